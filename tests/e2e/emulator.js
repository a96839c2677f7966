// Start the telegram-test-api Bot API emulator for the e2e tests.
// Usage: node emulator.js PORT. Prints "READY <port>" once listening; exits when stdin closes
// (so it never outlives the test run that started it) or on SIGTERM/SIGINT.
'use strict';

const TelegramServer = require('telegram-test-api');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node emulator.js PORT');
  process.exit(2);
}

// A webhook post that fails rejects a promise nobody awaits inside the emulator; Node would
// exit on it. Log it instead: the test that caused it will fail on its own terms.
process.on('unhandledRejection', (err) => {
  console.error(`emulator: unhandled rejection: ${err && err.message ? err.message : err}`);
});

async function main() {
  const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 600 });
  await server.start();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await server.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  console.log(`READY ${port}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
