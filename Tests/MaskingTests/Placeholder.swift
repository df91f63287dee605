import Testing
import Masking
