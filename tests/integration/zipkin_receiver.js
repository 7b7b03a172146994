#!/usr/bin/env node
// A small Zipkin v2 collector for the integration tests, and the schema check they share.
//
//   zipkin_receiver.js serve <port> <spans.jsonl>   POST /api/v2/spans on 127.0.0.1:<port>
//   zipkin_receiver.js validate <file>...           one Zipkin v2 JSON span per line (a span file)
//   zipkin_receiver.js --self-check                 proves the validator rejects what it must
//
// Every span is validated against definitions/Span of zipkin2-api.yaml, found at
// ../shared/specs/ beside the repository (override: ZIPKIN_API_SPEC).
'use strict';

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SPEC_PATH = process.env.ZIPKIN_API_SPEC ||
    path.resolve(REPO_ROOT, '..', 'shared', 'specs', 'zipkin2-api.yaml');
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const INT64_LIMIT = 2 ** 63;

function requireFromRepo(name) {
    try {
        return require(name);
    } catch (err) {
        throw new Error(`cannot load ${name} (run "npm ci" in ${REPO_ROOT}): ${err.message}`);
    }
}

// The OpenAPI 2.0 patterns are written unanchored ("[a-f0-9]{16}"), but the Zipkin server
// parses ids as whole lower-hex strings and rejects anything else; anchoring keeps that meaning,
// so that "ABCDEF0123456789abcdef0123456789" does not pass on a lowercase substring.
function anchorPatterns(node) {
    if (Array.isArray(node)) {
        return node.map(anchorPatterns);
    }
    if (node === null || typeof node !== 'object') {
        return node;
    }
    const copy = {};
    for (const [key, value] of Object.entries(node)) {
        copy[key] = key === 'pattern' && typeof value === 'string'
            ? `^(?:${value})$` : anchorPatterns(value);
    }
    return copy;
}

function loadSpanValidator(specPath = SPEC_PATH) {
    const yaml = requireFromRepo('js-yaml');
    const Ajv = requireFromRepo('ajv');
    let api;
    try {
        api = yaml.load(fs.readFileSync(specPath, 'utf8'));
    } catch (err) {
        throw new Error(`cannot read the Zipkin API spec ${specPath}: ${err.message}`);
    }
    if (!api || !api.definitions || !api.definitions.Span) {
        throw new Error(`${specPath} has no definitions/Span`);
    }
    // OpenAPI 2.0 schemas are draft-4-like and carry OpenAPI keywords (example, title...),
    // hence strict: false; the formats they use are checked, not ignored.
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addFormat('int64', {
        type: 'number',
        validate: (n) => Number.isInteger(n) && n >= -INT64_LIMIT && n < INT64_LIMIT,
    });
    ajv.addFormat('int32', {
        type: 'number',
        validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
    });
    ajv.addFormat('ipv4', { type: 'string', validate: (s) => net.isIPv4(s) });
    ajv.addFormat('ipv6', { type: 'string', validate: (s) => net.isIPv6(s) });
    ajv.addSchema({ $id: 'zipkin2-api', definitions: anchorPatterns(api.definitions) });
    const validate = ajv.getSchema('zipkin2-api#/definitions/Span');
    return (span) => {
        const valid = validate(span);
        return { valid, errors: valid ? null : validate.errors };
    };
}

function appendLines(file, records) {
    if (records.length > 0) {
        fs.appendFileSync(file, records.map((r) => JSON.stringify(r) + '\n').join(''));
    }
}

function parseSpanList(body) {
    let spans;
    try {
        spans = JSON.parse(body);
    } catch (err) {
        return { error: `body is not JSON: ${err.message}` };
    }
    if (!Array.isArray(spans)) {
        return { error: 'body is not a JSON array of spans' };
    }
    return { spans };
}

function serve(port, outFile) {
    const validateSpan = loadSpanValidator();
    fs.writeFileSync(outFile, '', { flag: 'a' });
    const server = http.createServer((req, res) => {
        const reply = (status, text) => {
            res.writeHead(status, { 'Content-Type': 'text/plain' });
            res.end(text + '\n');
        };
        if (req.url.split('?')[0] !== '/api/v2/spans') {
            return reply(404, 'not found');
        }
        if (req.method !== 'POST') {
            return reply(405, 'POST only');
        }
        const chunks = [];
        let size = 0;
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size <= MAX_BODY_BYTES) {
                chunks.push(chunk);
            }
        });
        req.on('end', () => {
            const headers = req.headers;
            if (size > MAX_BODY_BYTES) {
                appendLines(outFile, [{ span: null, valid: false, errors: 'body too large', headers }]);
                return reply(413, 'body too large');
            }
            const parsed = parseSpanList(Buffer.concat(chunks).toString('utf8'));
            if (parsed.error) {
                appendLines(outFile, [{ span: null, valid: false, errors: parsed.error, headers }]);
                return reply(400, parsed.error);
            }
            const records = parsed.spans.map((span) => ({ span, ...validateSpan(span), headers }));
            appendLines(outFile, records);
            const invalid = records.filter((r) => !r.valid).length;
            return invalid === 0 ? reply(202, 'accepted')
                : reply(400, `${invalid} of ${records.length} spans are invalid`);
        });
    });
    server.listen(port, '127.0.0.1', () => {
        process.stdout.write(`zipkin receiver listening on 127.0.0.1:${port}\n`);
    });
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

// Prints one JSON result per line of each span file; exits 1 when any line is not a valid span.
function validateFiles(files) {
    const validateSpan = loadSpanValidator();
    let failures = 0;
    for (const file of files) {
        const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
        lines.forEach((line, index) => {
            let result;
            try {
                result = validateSpan(JSON.parse(line));
            } catch (err) {
                result = { valid: false, errors: `not JSON: ${err.message}` };
            }
            failures += result.valid ? 0 : 1;
            process.stdout.write(JSON.stringify({ file, line: index + 1, ...result }) + '\n');
        });
    }
    return failures === 0 ? 0 : 1;
}

const GOOD_SPAN = {
    traceId: '4e441824ec2b6a44ffdc9bb9a6453df3',
    id: '352bff9a74ca9ad2',
    parentId: '6b221d5bc9e6496c',
    kind: 'SERVER',
    name: 'get /app/x',
    timestamp: 1556604172355737,
    duration: 1431,
    localEndpoint: { serviceName: 'demo', ipv4: '127.0.0.1', ipv6: '::1', port: 8080 },
    tags: { 'http.method': 'GET', 'http.path': '/app/x', 'http.status_code': '200' },
    annotations: [{ timestamp: 1556604172355737, value: 'start' },
        { timestamp: 1556604172357168, value: 'stop' }],
};

function withChange(change) {
    return { ...JSON.parse(JSON.stringify(GOOD_SPAN)), ...change };
}

const SELF_CHECK_CASES = [
    ['the full server span', GOOD_SPAN, true],
    ['a 64-bit trace id and no parent', withChange({ traceId: 'ffdc9bb9a6453df3', parentId: undefined }), true],
    ['only the required fields', { traceId: 'ffdc9bb9a6453df3', id: '352bff9a74ca9ad2' }, true],
    ['an id of 15 hex digits', withChange({ id: '352bff9a74ca9ad' }), false],
    ['an id of 17 hex digits', withChange({ id: '352bff9a74ca9ad2a' }), false],
    ['an uppercase trace id', withChange({ traceId: '4E441824EC2B6A44FFDC9BB9A6453DF3' }), false],
    ['a trace id of 32 characters with a lowercase-hex run', withChange({ traceId: 'ABCDEF0123456789abcdef0123456789' }), false],
    ['a trace id of 20 hex digits is fine by the spec', withChange({ traceId: '4e441824ec2b6a44ffdc' }), true],
    ['a non-hex parent id', withChange({ parentId: '6b221d5bc9e6496z' }), false],
    ['no trace id', withChange({ traceId: undefined }), false],
    ['no id', withChange({ id: undefined }), false],
    ['a lowercase kind', withChange({ kind: 'server' }), false],
    ['a duration of 0', withChange({ duration: 0 }), false],
    ['a fractional timestamp', withChange({ timestamp: 1556604172355737.5 }), false],
    ['a timestamp as a string', withChange({ timestamp: '1556604172355737' }), false],
    ['a numeric tag value', withChange({ tags: { 'http.status_code': 200 } }), false],
    ['an annotation without value', withChange({ annotations: [{ timestamp: 1556604172355737 }] }), false],
    ['a repeated annotation', withChange({ annotations: [GOOD_SPAN.annotations[0], GOOD_SPAN.annotations[0]] }), false],
    ['a bad ipv4', withChange({ localEndpoint: { serviceName: 'demo', ipv4: '999.0.0.1' } }), false],
    ['a bad ipv6', withChange({ localEndpoint: { serviceName: 'demo', ipv6: '2001:db8::zz' } }), false],
    ['a port as a string', withChange({ localEndpoint: { serviceName: 'demo', port: '80' } }), false],
    ['a span that is not an object', ['4e441824ec2b6a44ffdc9bb9a6453df3'], false],
];

function selfCheck() {
    const validateSpan = loadSpanValidator();
    let wrong = 0;
    for (const [label, span, expected] of SELF_CHECK_CASES) {
        const { valid, errors } = validateSpan(JSON.parse(JSON.stringify(span)));
        const ok = valid === expected;
        wrong += ok ? 0 : 1;
        process.stdout.write(`${ok ? 'ok' : 'WRONG'}: ${label}: ${valid ? 'accepted' : 'rejected'}` +
            `${errors ? ' ' + JSON.stringify(errors.map((e) => `${e.instancePath} ${e.message}`)) : ''}\n`);
    }
    process.stdout.write(`self-check: ${SELF_CHECK_CASES.length - wrong} passed, ${wrong} failed\n`);
    return wrong === 0 ? 0 : 1;
}

function usage() {
    process.stderr.write('usage: zipkin_receiver.js serve <port> <spans.jsonl>\n' +
        '       zipkin_receiver.js validate <span-file>...\n' +
        '       zipkin_receiver.js --self-check\n');
    return 2;
}

function main(argv) {
    const [command, ...args] = argv;
    if (command === 'serve' && args.length === 2 && /^[0-9]+$/.test(args[0])) {
        serve(Number(args[0]), args[1]);
        return null;
    }
    if (command === 'validate' && args.length > 0) {
        return validateFiles(args);
    }
    if (command === '--self-check' && args.length === 0) {
        return selfCheck();
    }
    return usage();
}

if (require.main === module) {
    try {
        const status = main(process.argv.slice(2));
        if (status !== null) {
            process.exitCode = status;
        }
    } catch (err) {
        process.stderr.write(`zipkin_receiver: ${err.message}\n`);
        process.exitCode = 2;
    }
}

module.exports = { loadSpanValidator };
