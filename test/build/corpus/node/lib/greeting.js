exports.greeting = (who) => `hello, ${who}, from node ${process.version}`
