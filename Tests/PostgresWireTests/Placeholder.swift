import Testing
import NIOTestUtils
import PostgresWire
