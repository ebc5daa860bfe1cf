/**
 * What a client is told because the server is closing or draining: a request or handshake it
 * will not take (PARLEY_SERVER_SHUTTING_DOWN: a 503, or an ERROR on a WebSocket), and a session
 * ended at close (CLOSE 'server shutdown'). One text, wherever the routes, the answers at close,
 * the WebSocket handshake or the server say it.
 */
export const SHUTTING_DOWN = 'the server is shutting down'
