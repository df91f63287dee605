import NIOPosix
import NIOSSL
import PostgresWire
import ProxyCore
