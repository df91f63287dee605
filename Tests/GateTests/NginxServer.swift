import Foundation
import TestSupport

/// A real nginx (Debian's nginx-light) as an HTTP gate's upstream: its own nginx.conf in a temp
/// directory, a free loopback port, `daemon off`, pid and logs in that directory. Its access log
/// shows what reached it, with the Authorization it was sent and the connection it came on.
final class NginxServer {
    let directory: URL
    let port: Int
    let process: Process

    /// `files`: paths under the document root and their contents; `tls`: PEM certificate and key
    /// to serve https with; `extraServer`: more directives in the server block (gzip, client certificates).
    init(files: [String: String], tls: (cert: String, key: String)? = nil, extraServer: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-\(UUID().uuidString)")
        let root = directory.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        port = try freePort()
        let d = directory.path
        let conf = """
            daemon off;
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log info;
            events { worker_connections 64; }
            http {
                log_format tollgate '$request_method $request_uri auth=[$http_authorization] conn=$connection te=[$http_transfer_encoding] status=$status body=[$request_body] ce=[$sent_http_content_encoding]';
                access_log \(d)/access.log tollgate;
                client_body_temp_path \(d)/body;
                proxy_temp_path \(d)/proxy;
                fastcgi_temp_path \(d)/fastcgi;
                uwsgi_temp_path \(d)/uwsgi;
                scgi_temp_path \(d)/scgi;
                types { application/json json; application/x-ndjson ndjson; text/plain txt; }
                default_type application/octet-stream;
                server {
                    listen 127.0.0.1:\(port)\(tls == nil ? "" : " ssl");
                    \(tls.map { "ssl_certificate \($0.cert); ssl_certificate_key \($0.key);" } ?? "")
                    root \(d)/www;
                    keepalive_requests 1000;
                    # The body is read whole (proxied to /stored), so the log can show it.
                    location = /upload { client_max_body_size 1m; client_body_buffer_size 1m; proxy_pass http://127.0.0.1:\(port)/stored; }
                    location = /stored { return 200 "stored\\n"; }
                    location = /gzipped.json { add_header Content-Encoding gzip; }
                    \(extraServer)
                }
            }
            """
        try conf.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        p.arguments = ["-p", d, "-c", directory.appendingPathComponent("nginx.conf").path, "-e", "\(d)/error.log"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        try waitForPort(port)
    }

    /// The access log's lines so far (nginx writes each when its response is done).
    var accessLog: [String] {
        ((try? String(contentsOf: directory.appendingPathComponent("access.log"), encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}
