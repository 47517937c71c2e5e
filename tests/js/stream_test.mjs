// InvokeEndpointWithResponseStream with the AWS SDK for JavaScript v3
// against a real infergate, over HTTP/1.1 and HTTP/2: a driver run by
// tests/integration/test_response_stream.py.
//
//   node stream_test.mjs URL ENDPOINT CONTENT_TYPE ACCEPT BODY_FILE
//
// Prints one JSON line per protocol:
//   {"handler": "h1"|"h2", "ok": true, "contentType", "variant", "parts", "body"}
//   {"handler": ..., "ok": false, "name", "message", "status"}
import { readFileSync } from "node:fs";
import {
    InvokeEndpointWithResponseStreamCommand,
    SageMakerRuntimeClient,
} from "@aws-sdk/client-sagemaker-runtime";
import { NodeHttp2Handler, NodeHttpHandler } from "@smithy/node-http-handler";

const [url, endpoint, ctype, accept, bodyFile] = process.argv.slice(2);
const body = readFileSync(bodyFile);
setTimeout(() => process.exit(3), 60000).unref();

for (const handler of ["h1", "h2"]) {
    const client = new SageMakerRuntimeClient({
        endpoint: url,
        region: "us-east-1",
        credentials: { accessKeyId: "AKID", secretAccessKey: "SECRET" },
        requestHandler: handler === "h2" ? new NodeHttp2Handler({ requestTimeout: 30000 })
                                         : new NodeHttpHandler({ requestTimeout: 30000 }),
        maxAttempts: 1,
    });
    try {
        const out = await client.send(new InvokeEndpointWithResponseStreamCommand({
            EndpointName: endpoint, ContentType: ctype, Accept: accept, Body: body,
        }));
        const chunks = [];
        let parts = 0;
        for await (const ev of out.Body) {
            if (ev.PayloadPart) {
                parts++;
                chunks.push(Buffer.from(ev.PayloadPart.Bytes));
            }
        }
        console.log(JSON.stringify({
            handler, ok: true, contentType: out.ContentType, variant: out.InvokedProductionVariant,
            parts, body: Buffer.concat(chunks).toString("utf8"),
        }));
    } catch (e) {
        console.log(JSON.stringify({
            handler, ok: false, name: e.name, message: e.message,
            status: e.$metadata ? e.$metadata.httpStatusCode : 0,
        }));
    }
    client.destroy();
}
