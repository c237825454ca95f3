const { greeting } = require('./lib/greeting.js')
if (process.argv[2] === '--once') {
  console.log(greeting('corpus'))
} else {
  require('node:http').createServer((req, res) => res.end(`${greeting('http')}\n`)).listen(3000)
}
