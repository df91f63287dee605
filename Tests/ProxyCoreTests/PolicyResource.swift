import Policy

/// Policy's resource (CaptureFormat has one of the same name for what is recorded).
typealias PolicyResource = Resource
