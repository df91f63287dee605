import Foundation
import NIOCore
import Testing

import GateRuntime

/// The default number of event loops follows the CPUs the process may use, not the host's.
@Suite struct EventLoopCountTests {
    @Test func affinityMaskFromProcStatus() {
        #expect(EventLoops.cpusAllowed(status: "Name:\tcapture-proxy\nCpus_allowed:\t2\nCpus_allowed_list:\t1\n") == 1)
        #expect(EventLoops.cpusAllowed(status: "Cpus_allowed:\t3\n") == 2)
        #expect(EventLoops.cpusAllowed(status: "Cpus_allowed:\tff,ffffffff\n") == 40)
        #expect(EventLoops.cpusAllowed(status: "Cpus_allowed:\t00000000,0000000f\n") == 4)
        #expect(EventLoops.cpusAllowed(status: "Name:\tx\n") == nil)
        #expect(EventLoops.cpusAllowed(status: "Cpus_allowed:\t0\n") == nil)
    }

    @Test func neverMoreThanTheCoresThisProcessMayUse() throws {
        let cores = EventLoops.usableCores()
        #expect(cores >= 1 && cores <= System.coreCount)
        #if os(Linux)
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        if let allowed = EventLoops.cpusAllowed(status: status) { #expect(cores <= allowed) }
        #endif
    }
}
