#!/usr/bin/env node
// A small kpid client in Node: lists the metrics per family, then computes success.nps in
// calculator mode (5 promoters, 2 detractors, 10 responses → 30).
//
//   npm ci
//   node client.js --addr 127.0.0.1:50051
//
// Loads proto/kpi/v1/*.proto at run time with @grpc/proto-loader: no generated code.
// Exits 1 on any RPC error or if the NPS is not "30", 2 on bad arguments.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const NPS_INPUTS = { promoters: '5', detractors: '2', responses: '10' };
const EXPECTED_NPS = '30';

/** Parses `--addr HOST:PORT` and `--timeout SECONDS`. */
function parseArgs(argv) {
  const args = { addr: '127.0.0.1:50051', timeout: 10 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const [name, inline] = flag.split(/=(.*)/s, 2);
    if (name !== '--addr' && name !== '--timeout') {
      throw new Error(`unknown argument ${flag} (usage: client.js --addr HOST:PORT [--timeout SECONDS])`);
    }
    const value = inline !== undefined ? inline : argv[++i];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (name === '--addr') {
      args.addr = value.replace(/^http:\/\//, '');
    } else {
      args.timeout = Number(value);
      if (!(args.timeout > 0)) throw new Error(`--timeout ${value} is not a positive number`);
    }
  }
  return args;
}

/** Loads the kpi.v1 package from proto/kpi/v1/*.proto. */
function loadKpiV1() {
  const dir = path.join(PROTO_ROOT, 'kpi', 'v1');
  const files = fs.readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => path.join('kpi', 'v1', f));
  const definition = protoLoader.loadSync(files, {
    // Our protos import each other by `kpi/v1/…`; google/protobuf/timestamp.proto comes
    // from the well-known types protobufjs (proto-loader's dependency) ships.
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).kpi.v1;
}

/** Calls a unary method as a promise, with a deadline. */
function call(client, method, request, timeoutSeconds) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutSeconds * 1000);
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  const kpi = loadKpiV1();
  const client = new kpi.MetricsService(args.addr, grpc.credentials.createInsecure());
  try {
    const catalogue = await call(client, 'ListMetrics', {}, args.timeout);
    const byFamily = new Map();
    for (const metric of catalogue.metrics) {
      if (!byFamily.has(metric.family)) byFamily.set(metric.family, []);
      byFamily.get(metric.family).push(metric.id);
    }
    console.log(`${catalogue.metrics.length} metrics in ${byFamily.size} families`);
    for (const [family, ids] of [...byFamily].sort(([a], [b]) => a.localeCompare(b))) {
      console.log(`  ${family} (${ids.length}): ${ids.join(', ')}`);
    }

    const answer = await call(client, 'Compute', { metric_id: 'success.nps', inputs: NPS_INPUTS }, args.timeout);
    if (answer.rows.length !== 1) {
      console.error(`error: success.nps came back with ${answer.rows.length} rows, expected 1`);
      return 1;
    }
    const row = answer.rows[0];
    const from = Object.entries(row.inputs).sort().map(([k, v]) => `${k}=${v}`).join(', ');
    if (row.value === '') {
      console.error(`error: success.nps is undefined: ${row.undefined_reason}`);
      return 1;
    }
    console.log(`success.nps = ${row.value} (from ${from})`);
    if (row.value !== EXPECTED_NPS) {
      console.error(`error: success.nps is ${row.value}, expected ${EXPECTED_NPS}`);
      return 1;
    }
    return 0;
  } catch (e) {
    const code = e.code !== undefined ? grpc.status[e.code] ?? e.code : 'ERROR';
    console.error(`error: ${code}: ${e.details ?? e.message}`);
    return 1;
  } finally {
    client.close();
  }
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => { console.error(`error: ${e.stack ?? e}`); process.exitCode = 1; },
);
