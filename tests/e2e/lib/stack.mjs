// SPDX-License-Identifier: MIT
// The whole loop for end-to-end tests: trello-mock, `trellohook serve` on a
// port chosen up front (CALLBACK_DOMAIN must name it), a seeded board and a
// token, and helpers to register webhooks through the real `webhook add` path.
import { closedPort, control, newBoard, startMock } from './mock.mjs';
import { baseEnv, startServe, tempDir, thJson } from './serve.mjs';

export const TOKEN = 'ATTA' + 'a1b2c3d4'.repeat(8) + 'ABCDEF12';

/**
 * Start mock + serve. Options: env (extra variables), mockArgs, serveArgs.
 * Returns { mock, serve, env, dir, board, token, addWebhook(model), stop() }.
 */
export async function startStack({ env: extra = {}, mockArgs = [], serveArgs = [] } = {}) {
  const tmp = tempDir();
  const mock = await startMock(['--listen', '127.0.0.1:0', '--token', TOKEN, ...mockArgs]);
  const port = await closedPort();
  const env = baseEnv(tmp.dir, {
    CALLBACK_DOMAIN: `http://127.0.0.1:${port}`,
    TRELLOHOOK_LISTEN: `127.0.0.1:${port}`,
    TRELLO_API_URL: mock.url,
    TRELLO_API_KEY: mock.key,
    TRELLO_API_SECRET: mock.secret,
    ...extra,
  });
  const serve = await startServe(env, ['--listen', `127.0.0.1:${port}`, ...serveArgs]);
  const board = await newBoard(mock);
  const stack = {
    mock, serve, env, dir: tmp.dir, board, token: TOKEN, port,
    /** Register a webhook on @model (default: the board) with the real CLI path. */
    addWebhook: (model = board.id, args = []) =>
      thJson(env, ['webhook', 'add', '--model', model, '--token', TOKEN, ...args]),
    /** Perform an action in the mock and wait until every delivery attempt finished. */
    act: (action) => control(mock, 'POST', '/_mock/actions', { wait: true, ...action }),
    /** Restart serve on the same port and store (after it stopped or was killed). */
    async restart() {
      stack.serve = await startServe(env, ['--listen', `127.0.0.1:${port}`, ...serveArgs]);
      return stack.serve;
    },
    async stop() {
      await stack.serve.stop();
      await mock.stop();
      tmp.cleanup();
    },
  };
  return stack;
}
