import Testing
import Identity
