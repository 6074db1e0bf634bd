// A loopback reverse proxy that adds `Authorization: Bearer <token>` to every request
// and streams the answer back unchanged (SSE included). The official conformance
// runner sends no credentials, so it talks to the protected server through this.

import http from "node:http";

/** Starts the proxy on a free loopback port; resolves to { url, close }. */
export function startTokenProxy(upstreamBase, token) {
  const upstream = new URL(upstreamBase);
  let own;
  const server = http.createServer((incoming, outgoing) => {
    const headers = { ...incoming.headers, authorization: `Bearer ${token}` };
    // The server checks Host and Origin against its own address, as it should. The
    // proxy's own host and origin stand for the server's; any other value (a DNS
    // rebinding probe, say) passes unchanged so that the server still judges it.
    if (headers.host === own.host) headers.host = upstream.host;
    if (headers.origin === own.origin) headers.origin = upstream.origin;
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode, answer.rawHeaders);
        answer.pipe(outgoing);
      },
    );
    forward.on("error", (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502, { "content-type": "text/plain" });
      outgoing.end(`proxy: ${error.message}`);
    });
    // A client that goes away takes its upstream request with it (long SSE streams).
    outgoing.on("close", () => forward.destroy());
    incoming.pipe(forward);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      own = new URL(`http://127.0.0.1:${server.address().port}`);
      resolve({
        url: own.origin,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      });
    });
  });
}
