import Hummingbird
import Logging
import NIOCore

/// The HTTP listener: `/metrics` in the Prometheus text format.
enum HTTPServer {
    /// The application serving `service`'s metrics on `address`;
    /// `onListening` gets the bound address.
    static func application(_ address: ListenAddress, service: GreylistService, tracker: ConnectionTracker,
                            logger: Logger, onListening: @escaping @Sendable (String) -> Void)
        -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            service.metrics.connections(tracker.count)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(string: service.metrics.text())))
        }
        let bind: BindAddress
        switch address {
        case .tcp(let host, let port): bind = .hostname(host, port: port)
        case .unix(let path): bind = .unixDomainSocket(path: path)
        }
        var httpLogger = logger
        httpLogger[metadataKey: "greylag.listener"] = "http"
        return Application(router: router, configuration: .init(address: bind, serverName: "greylag"),
                           onServerRunning: { channel in
                               onListening(channel.localAddress.map(GreylagDaemon.describe) ?? "\(address)")
                           }, logger: httpLogger)
    }
}
