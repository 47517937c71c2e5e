// The AWS SDK for JavaScript v3 (SageMakerRuntimeClient) against a real
// infergate: a driver run by tests/integration/test_js_sdk.py, which writes
// the plan, starts the gateway and checks what this script reports.
//
//   node sdk_test.mjs PLAN.json
//
// PLAN.json: {"endpoint": "http://127.0.0.1:PORT", "deadline_ms": N,
//             "steps": [STEP, ...]}
// STEP:      {"name": S, "client": C, "handler": "h1"|"h2",
//             "timeout_ms": N, "calls": [CALL, ...], "concurrent": bool}
// CALL:      {"input": {EndpointName, ContentType?, Accept?, ...},
//             "body": "text" | "fill": {"byte": "1", "n": N},
//             "delay_ms": N}   (concurrent steps: start this call N ms late)
//
// Steps run one after the other; the calls of a step run one after the
// other, or all at once when "concurrent". Steps naming the same client
// share one SageMakerRuntimeClient (one connection pool, and for "h2" one
// HTTP/2 session). Every call is bounded by its step's timeout_ms (it is
// aborted then, and reported as timed out), and the whole run by
// deadline_ms, so nothing here can hang CI.
//
// Output: one JSON line per step on stdout,
//   {"step": S, "results": [RESULT, ...]}
// RESULT: {"ok": true, "status", "body", "contentType", "variant", "ms"} or
//         {"ok": false, "name", "message", "status", "fault", "ms",
//          "timedOut", "OriginalStatusCode", "OriginalMessage", "LogStreamArn"}
// and a last line {"done": true}.

import { readFileSync } from "node:fs";
import http from "node:http";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { NodeHttp2Handler, NodeHttpHandler } from "@smithy/node-http-handler";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));

// The whole run's bound: print what is known and leave.
setTimeout(() => {
    console.log(JSON.stringify({ deadline: true }));
    process.exit(3);
}, plan.deadline_ms).unref();

const clients = new Map();

function client(name, handler) {
    let c = clients.get(name);
    if (c)
        return c;
    const requestHandler = handler === "h2"
        ? new NodeHttp2Handler({ requestTimeout: 0, sessionTimeout: 0 })
        : new NodeHttpHandler({
            httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
        });
    c = new SageMakerRuntimeClient({
        endpoint: plan.endpoint,
        region: "us-east-1",
        // The gateway's runtime path does not check signatures.
        credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
        // One attempt: a retried ThrottlingException would hide what the
        // gateway answered.
        maxAttempts: 1,
        requestHandler,
    });
    clients.set(name, c);
    return c;
}

function body(call) {
    if (call.fill)
        return Buffer.alloc(call.fill.n, call.fill.byte);
    return call.body;
}

async function invoke(c, call, timeoutMs) {
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        ac.abort();
    }, timeoutMs);
    const t0 = performance.now();
    try {
        const res = await c.send(new InvokeEndpointCommand({ ...call.input, Body: body(call) }),
                                 { abortSignal: ac.signal });
        return {
            ok: true,
            status: res.$metadata.httpStatusCode,
            requestId: res.$metadata.requestId,
            body: Buffer.from(res.Body).toString("utf8"),
            contentType: res.ContentType,
            variant: res.InvokedProductionVariant,
            ms: Math.round(performance.now() - t0),
        };
    } catch (e) {
        return {
            ok: false,
            timedOut,
            name: e.name,
            message: e.message,
            status: e.$metadata ? e.$metadata.httpStatusCode : undefined,
            fault: e.$fault,
            OriginalStatusCode: e.OriginalStatusCode,
            OriginalMessage: e.OriginalMessage,
            LogStreamArn: e.LogStreamArn,
            ms: Math.round(performance.now() - t0),
        };
    } finally {
        clearTimeout(timer);
    }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const step of plan.steps) {
    const c = client(step.client, step.handler);
    let results;
    if (step.concurrent) {
        results = await Promise.all(step.calls.map(async (call) => {
            if (call.delay_ms)
                await sleep(call.delay_ms);
            return invoke(c, call, step.timeout_ms);
        }));
    } else {
        results = [];
        for (const call of step.calls)
            results.push(await invoke(c, call, step.timeout_ms));
    }
    console.log(JSON.stringify({ step: step.name, results }));
}

for (const c of clients.values())
    c.destroy();
console.log(JSON.stringify({ done: true }));
process.exit(0);
