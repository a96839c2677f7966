// A local SMSC for the e2e tests: the npm `smpp` package as a server on 127.0.0.1.
//
//   node smsc.js SMPP_PORT CONTROL_PORT
//
// It accepts bind_transceiver (any system_id/password), answers every submit_sm with a fresh
// message id and records it; the control port (HTTP, JSON) lets a test read and steer it:
//   GET  /submits            every submit_sm so far (dest, data_coding, esm_class, udh hex, text)
//   GET  /binds              how many binds so far, and the sessions bound now
//   POST /mo {from, to, text, parts?}   send a mobile-originated SMS (parts: split into that
//                            many UCS-2 parts with concatenation headers); answers the statuses
//   POST /receipt {message_id, stat}   send a delivery receipt
//   POST /stop               close the SMPP port and every session (the SMSC "goes away")
//   POST /start              listen on the same SMPP port again
//   POST /throttle {count}   answer the next `count` submits with ESME_RTHROTTLED
// It exits when its stdin closes (the test run ended).
'use strict';
const http = require('http');
const smpp = require('smpp');

const smppPort = Number(process.argv[2]);
const controlPort = Number(process.argv[3]);
const submits = [];
const sessions = new Set();
let binds = 0;
let nextId = 1;
let throttle = 0;
let server = null;

process.on('unhandledRejection', (err) => console.error('unhandled', err));
process.on('uncaughtException', (err) => console.error('uncaught', err));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

function onSession(session) {
  session.on('error', (err) => console.error('session error', err.message));
  session.on('close', () => sessions.delete(session));
  session.on('bind_transceiver', (pdu) => {
    binds += 1;
    sessions.add(session);
    session.send(pdu.response());
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    sessions.delete(session);
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    if (throttle > 0) {
      throttle -= 1;
      session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
      return;
    }
    const sm = pdu.short_message || {};
    const udh = Buffer.concat(sm.udh || []);
    const id = `m${nextId++}`;
    submits.push({
      message_id: id,
      dest: pdu.destination_addr,
      source: pdu.source_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      udh: udh.toString('hex'),
      text: typeof sm.message === 'string' ? sm.message : String(sm.message || ''),
      at: Date.now(),
    });
    session.send(pdu.response({message_id: id}));
  });
}

function start() {
  if (server) return;
  server = smpp.createServer({}, onSession);
  server.on('error', (err) => console.error('server error', err.message));
  server.listen(smppPort, '127.0.0.1');
}

function stop(callback) {
  let called = false;
  const done = () => { if (!called) { called = true; callback(); } };
  for (const s of sessions) s.destroy ? s.destroy() : s.close();
  sessions.clear();
  if (!server) return done();
  const s = server;
  server = null;
  s.close(() => done());
  // sockets still open keep close() waiting: end them
  setTimeout(done, 200);
}

function deliver(params) {
  const bound = [...sessions];
  if (!bound.length) return Promise.resolve(['no session']);
  return Promise.all(bound.slice(0, 1).map((s) => new Promise((resolve) => {
    s.deliver_sm(params, (resp) => resolve(resp.command_status));
  })));
}

async function mo(body) {
  const parts = Number(body.parts || 1);
  const base = {
    source_addr: body.from,
    destination_addr: body.to || '1069000',
    source_addr_ton: 1,
    source_addr_npi: 1,
  };
  if (parts <= 1) {
    return deliver({...base, short_message: body.text});
  }
  const chars = [...body.text];
  const size = Math.ceil(chars.length / parts);
  const ref = Math.floor(Math.random() * 256);
  const statuses = [];
  for (let i = 0; i < parts; i++) {
    const udh = Buffer.from([5, 0, 3, ref, parts, i + 1]);
    const message = chars.slice(i * size, (i + 1) * size).join('');
    statuses.push(...await deliver({
      ...base, esm_class: 0x40, data_coding: 8, short_message: {udh, message},
    }));
  }
  return statuses;
}

function receipt(body) {
  const stat = body.stat || 'DELIVRD';
  return deliver({
    source_addr: body.from || '',
    esm_class: 4,
    short_message: `id:${body.message_id} sub:001 dlvrd:001 submit date:2701010800 ` +
      `done date:2701010801 stat:${stat} err:000 text:`,
    receipted_message_id: body.message_id,
    message_state: stat === 'DELIVRD' ? 2 : 5,
  });
}

function reply(res, code, data) {
  res.writeHead(code, {'Content-Type': 'application/json'});
  res.end(JSON.stringify(data));
}

http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => { raw += c; });
  req.on('end', async () => {
    const body = raw ? JSON.parse(raw) : {};
    try {
      if (req.method === 'GET' && req.url === '/submits') return reply(res, 200, submits);
      if (req.method === 'GET' && req.url === '/binds') {
        return reply(res, 200, {binds, bound: sessions.size, listening: !!server});
      }
      if (req.url === '/mo') return reply(res, 200, {statuses: await mo(body)});
      if (req.url === '/receipt') return reply(res, 200, {statuses: await receipt(body)});
      if (req.url === '/stop') return stop(() => reply(res, 200, {ok: true}));
      if (req.url === '/start') { start(); return reply(res, 200, {ok: true}); }
      if (req.url === '/throttle') { throttle = Number(body.count || 1); return reply(res, 200, {}); }
      reply(res, 404, {error: 'unknown'});
    } catch (err) {
      reply(res, 500, {error: String(err)});
    }
  });
}).listen(controlPort, '127.0.0.1');

start();
