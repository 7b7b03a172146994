#!/usr/bin/env node
// A small Zipkin v2 and OTLP/HTTP JSON collector for the integration tests, and the schema
// checks they share.
//
//   zipkin_receiver.js serve <port> <spans.jsonl>   POST /api/v2/spans (Zipkin v2 JSON) and
//                                                   POST /v1/traces (OTLP JSON) on 127.0.0.1:<port>
//   zipkin_receiver.js validate <file>...           one Zipkin v2 JSON span per line (a span file)
//   zipkin_receiver.js --self-check                 proves the validators reject what they must
//
// Every Zipkin span is validated against definitions/Span of zipkin2-api.yaml, found at
// ../shared/specs/ beside the repository (override: ZIPKIN_API_SPEC); every OTLP request against
// otlp_trace_request.schema.json beside this file, and the self-check holds the OTLP example
// request of ../shared/specs/otlp/trace.json (override: OTLP_EXAMPLE) to it.
//
// Each span received is one line of spans.jsonl: {format: "zipkin", span, valid, errors,
// headers}, or {format: "otlp", service, resource, scope, span, valid, errors, headers} with an
// OTLP span and the resource and scope it came under (service: the resource's service.name).
// A body that yields no span is one line with span null and the body itself.
'use strict';

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SPEC_PATH = process.env.ZIPKIN_API_SPEC ||
    path.resolve(REPO_ROOT, '..', 'shared', 'specs', 'zipkin2-api.yaml');
const OTLP_SCHEMA_PATH = path.resolve(__dirname, 'otlp_trace_request.schema.json');
const OTLP_EXAMPLE_PATH = process.env.OTLP_EXAMPLE ||
    path.resolve(REPO_ROOT, '..', 'shared', 'specs', 'otlp', 'trace.json');
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const INT64_LIMIT = 2 ** 63;
const UINT64_LIMIT = 2n ** 64n;

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

// 64-bit integers of the proto3 JSON mapping: decimal strings, without a leading zero.
function isDecimalBelow(text, low, high) {
    return /^-?(0|[1-9][0-9]*)$/.test(text) && text !== '-0' &&
        BigInt(text) >= low && BigInt(text) < high;
}

// What the schema cannot say of one span: it ends no earlier than it starts, and the
// attribute keys of each list (the span's, its events' and links') are unique.
function spanSemanticErrors(span, at) {
    const errors = [];
    const uniqueKeys = (list, where) => {
        const keys = (Array.isArray(list) ? list : []).map((kv) => kv && kv.key);
        if (new Set(keys).size !== keys.length) {
            errors.push({ instancePath: where, message: 'attribute keys must be unique' });
        }
    };
    try {
        if (BigInt(span.endTimeUnixNano) < BigInt(span.startTimeUnixNano)) {
            errors.push({ instancePath: at, message: 'endTimeUnixNano is before startTimeUnixNano' });
        }
    } catch (err) {
        // Times that are not decimal strings are the schema's to report.
    }
    uniqueKeys(span.attributes, `${at}/attributes`);
    for (const [name, list] of [['events', span.events], ['links', span.links]]) {
        (Array.isArray(list) ? list : []).forEach((item, i) =>
            uniqueKeys(item && item.attributes, `${at}/${name}/${i}/attributes`));
    }
    return errors;
}

// The spans of a request, each with the resource and scope it came under and its path
// (a JSON pointer); what is not an array holds no span.
function otlpSpans(request) {
    const found = [];
    const arrayOf = (value) => (Array.isArray(value) ? value : []);
    arrayOf(request && request.resourceSpans).forEach((resourceSpans, r) => {
        const resource = resourceSpans && resourceSpans.resource;
        arrayOf(resourceSpans && resourceSpans.scopeSpans).forEach((scopeSpans, s) => {
            arrayOf(scopeSpans && scopeSpans.spans).forEach((span, i) => found.push({
                span, resource, scope: scopeSpans.scope,
                at: `/resourceSpans/${r}/scopeSpans/${s}/spans/${i}`,
            }));
        });
    });
    return found;
}

function serviceNameOf(resource) {
    const attributes = resource && Array.isArray(resource.attributes) ? resource.attributes : [];
    const entry = attributes.find((kv) => kv && kv.key === 'service.name');
    return entry && entry.value ? entry.value.stringValue : undefined;
}

// validate(request) -> {valid, errors}: the schema, then the per-span rules above.
function loadOtlpValidator(schemaPath = OTLP_SCHEMA_PATH) {
    const Ajv = requireFromRepo('ajv');
    let schema;
    try {
        schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
    } catch (err) {
        throw new Error(`cannot read the OTLP schema ${schemaPath}: ${err.message}`);
    }
    const ajv = new Ajv({ allErrors: true });
    ajv.addFormat('uint64-decimal', { type: 'string', validate: (s) => isDecimalBelow(s, 0n, UINT64_LIMIT) });
    ajv.addFormat('int64-decimal', {
        type: 'string',
        validate: (s) => isDecimalBelow(s, -(UINT64_LIMIT / 2n), UINT64_LIMIT / 2n),
    });
    const validate = ajv.compile(schema);
    return (request) => {
        const errors = validate(request) ? [] : [...validate.errors];
        for (const { span, at } of otlpSpans(request)) {
            if (span && typeof span === 'object') {
                errors.push(...spanSemanticErrors(span, at));
            }
        }
        return { valid: errors.length === 0, errors: errors.length === 0 ? null : errors };
    };
}

// One record per span of an OTLP request, each with the errors found in it and those found
// outside every span (which spoil them all).
function otlpRecords(request, result, headers, body) {
    const errors = result.errors || [];
    const inSpan = /^\/resourceSpans\/[0-9]+\/scopeSpans\/[0-9]+\/spans\/[0-9]+(\/|$)/;
    const outside = errors.filter((e) => !inSpan.test(e.instancePath));
    const spans = otlpSpans(request);
    if (spans.length === 0) {
        return [{ format: 'otlp', span: null, ...result, headers, body }];
    }
    return spans.map(({ span, resource, scope, at }) => {
        const own = outside.concat(errors.filter((e) =>
            e.instancePath === at || e.instancePath.startsWith(`${at}/`)));
        return {
            format: 'otlp', service: serviceNameOf(resource), resource, scope, span,
            valid: own.length === 0, errors: own.length === 0 ? null : own, headers,
        };
    });
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

// POST /api/v2/spans: a JSON array of Zipkin v2 spans; 202 when all are valid.
function zipkinEndpoint(outFile) {
    const validateSpan = loadSpanValidator();
    return (body, headers, reply) => {
        const parsed = parseSpanList(body);
        if (parsed.error) {
            appendLines(outFile, [{ format: 'zipkin', span: null, valid: false, errors: parsed.error,
                headers, body }]);
            return reply(400, parsed.error);
        }
        const records = parsed.spans.map((span) => ({ format: 'zipkin', span, ...validateSpan(span),
            headers }));
        appendLines(outFile, records);
        const invalid = records.filter((r) => !r.valid).length;
        return invalid === 0 ? reply(202, 'accepted')
            : reply(400, `${invalid} of ${records.length} spans are invalid`);
    };
}

// POST /v1/traces: an ExportTraceServiceRequest in JSON, which the client MUST mark
// application/json; 200 with an empty ExportTraceServiceResponse when it is valid, else 400
// with a google.rpc.Status (code 3, INVALID_ARGUMENT), as specification.md says.
function otlpEndpoint(outFile) {
    const validateRequest = loadOtlpValidator();
    return (body, headers, reply) => {
        const refuse = (status, message) => {
            appendLines(outFile, [{ format: 'otlp', span: null, valid: false, errors: message,
                headers, body }]);
            return reply(status, JSON.stringify({ code: 3, message }), 'application/json');
        };
        const type = (headers['content-type'] || '').split(';')[0].trim().toLowerCase();
        if (type !== 'application/json') {
            return refuse(415, `content type ${headers['content-type']} is not application/json`);
        }
        let request;
        try {
            request = JSON.parse(body);
        } catch (err) {
            return refuse(400, `body is not JSON: ${err.message}`);
        }
        const result = validateRequest(request);
        appendLines(outFile, otlpRecords(request, result, headers, body));
        return result.valid ? reply(200, '{}', 'application/json')
            : reply(400, JSON.stringify({ code: 3, message: 'invalid request' }), 'application/json');
    };
}

function serve(port, outFile) {
    fs.writeFileSync(outFile, '', { flag: 'a' });
    const endpoints = {
        '/api/v2/spans': { format: 'zipkin', receive: zipkinEndpoint(outFile) },
        '/v1/traces': { format: 'otlp', receive: otlpEndpoint(outFile) },
    };
    const server = http.createServer((req, res) => {
        const reply = (status, text, type = 'text/plain') => {
            res.writeHead(status, { 'Content-Type': type });
            res.end(text + '\n');
        };
        const endpoint = endpoints[req.url.split('?')[0]];
        if (!endpoint) {
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
                appendLines(outFile, [{ format: endpoint.format, span: null, valid: false,
                    errors: 'body too large', headers }]);
                return reply(413, 'body too large');
            }
            return endpoint.receive(Buffer.concat(chunks).toString('utf8'), headers, reply);
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

// OTLP requests: the example of the spec, and copies of it changed by change(request, span).
function otlpCases() {
    let example;
    try {
        example = JSON.parse(fs.readFileSync(OTLP_EXAMPLE_PATH, 'utf8'));
    } catch (err) {
        throw new Error(`cannot read the OTLP example ${OTLP_EXAMPLE_PATH}: ${err.message}`);
    }
    const changed = (change) => {
        const request = JSON.parse(JSON.stringify(example));
        change(request, request.resourceSpans[0].scopeSpans[0].spans[0]);
        return request;
    };
    const set = (fields) => changed((request, span) => Object.assign(span, fields));
    const attribute = (key, value) => ({ key, value });
    return [
        ['the example request of the spec (uppercase hex ids)', example, true],
        ['the example with lowercase ids', set({ traceId: example.resourceSpans[0].scopeSpans[0]
            .spans[0].traceId.toLowerCase() }), true],
        ['a server span as mod_tomograph makes it', set({
            kind: 2, status: { code: 2 }, parentSpanId: undefined,
            events: [{ timeUnixNano: '1544712660000000000', name: 'start' }],
            attributes: [attribute('http.status_code', { stringValue: '500' })] }), true],
        ['an empty request', {}, true],
        ['an int64 attribute as a string', set({ attributes: [attribute('n', { intValue: '-5' })] }), true],
        ['the largest fixed64', set({ endTimeUnixNano: '18446744073709551615' }), true],
        ['a trace id in base64 (the plain proto3 mapping)', set({ traceId: 'W47/95gDgQPSabYzgT/GDA==' }), false],
        ['a trace id of 31 hex digits', set({ traceId: '5b8efff798038103d269b633813fc60' }), false],
        ['a trace id of zeros', set({ traceId: '0'.repeat(32) }), false],
        ['a span id of 17 hex digits', set({ spanId: 'eee19b7ec3c1b1740' }), false],
        ['an empty parent span id', set({ parentSpanId: '' }), false],
        ['a null parent span id', set({ parentSpanId: null }), false],
        ['a kind by its enum name', set({ kind: 'SPAN_KIND_SERVER' }), false],
        ['a kind out of the enum', set({ kind: 6 }), false],
        ['a status code by its enum name', set({ status: { code: 'STATUS_CODE_ERROR' } }), false],
        ['a start time as a number', set({ startTimeUnixNano: 1544712660000000000 }), false],
        ['a start time with a leading zero', set({ startTimeUnixNano: '01544712660000000000' }), false],
        ['a negative start time', set({ startTimeUnixNano: '-1' }), false],
        ['an end time of 2^64', set({ endTimeUnixNano: '18446744073709551616' }), false],
        ['an end before the start', set({ endTimeUnixNano: '1544712659999999999' }), false],
        ['no end time', set({ endTimeUnixNano: undefined }), false],
        ['no trace id', set({ traceId: undefined }), false],
        ['an empty name', set({ name: '' }), false],
        ['a snake_case field name', changed((request, span) => {
            span.start_time_unix_nano = span.startTimeUnixNano;
            delete span.startTimeUnixNano;
        }), false],
        ['snake_case resource_spans', { resource_spans: example.resourceSpans }, false],
        ['an unknown span field', set({ durationNano: '1000' }), false],
        ['an unknown resource field', changed((request) => { request.resourceSpans[0].resource.labels = []; }), false],
        ['a repeated attribute key', set({ attributes: [attribute('k', { stringValue: 'a' }),
            attribute('k', { stringValue: 'b' })] }), false],
        ['a value with two members of its oneof', set({ attributes: [attribute('k',
            { stringValue: 'a', boolValue: true })] }), false],
        ['an int64 attribute as a number', set({ attributes: [attribute('n', { intValue: 5 })] }), false],
        ['a plain string as a value', set({ attributes: [attribute('k', 'a')] }), false],
        ['an event without a time', set({ events: [{ name: 'start' }] }), false],
        ['resourceSpans not an array', { resourceSpans: example.resourceSpans[0] }, false],
        ['a request that is an array', [example], false],
    ];
}

function selfCheck() {
    const validateZipkinSpan = loadSpanValidator();
    const validateOtlpRequest = loadOtlpValidator();
    const checks = [
        ...SELF_CHECK_CASES.map(([label, span, expected]) => ['zipkin', label, validateZipkinSpan, span, expected]),
        ...otlpCases().map(([label, request, expected]) => ['otlp', label, validateOtlpRequest, request, expected]),
    ];
    let wrong = 0;
    for (const [format, label, validate, input, expected] of checks) {
        const { valid, errors } = validate(JSON.parse(JSON.stringify(input)));
        const ok = valid === expected;
        wrong += ok ? 0 : 1;
        process.stdout.write(`${ok ? 'ok' : 'WRONG'}: ${format}: ${label}: ${valid ? 'accepted' : 'rejected'}` +
            `${errors ? ' ' + JSON.stringify(errors.map((e) => `${e.instancePath} ${e.message}`)) : ''}\n`);
    }
    process.stdout.write(`self-check: ${checks.length - wrong} passed, ${wrong} failed\n`);
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

module.exports = { loadSpanValidator, loadOtlpValidator };
