// Loaded into the Azurite we start (NODE_OPTIONS=--require): Azurite saves its data and exits on the first
// SIGTERM or SIGINT (process.once in node_modules/azurite/dist/src/azurite.js), but a second one would kill it
// mid-save (Node's default action). The kernel sends the parent-death signal again each time the child is
// handed to another thread of a dying multi-threaded parent (`chatft dev`), so later ones are ignored here:
// a listener removes Node's default action (https://nodejs.org/api/process.html#signal-events).
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {});
}
