/**
 * The example of a user's test written with resound/testing
 * (examples/rooms-app.test.ts) runs in npm test: imported, its node:test
 * cases run in this file's process.
 */
import '../../examples/rooms-app.test.js';
