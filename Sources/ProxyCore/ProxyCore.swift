import Yams
import NIOCore
import Logging
