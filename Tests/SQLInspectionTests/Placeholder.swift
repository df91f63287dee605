import Testing
import SQLInspection
