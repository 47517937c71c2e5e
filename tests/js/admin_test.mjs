// The AWS SDK for JavaScript v3 control-plane client (SageMakerClient, with
// its waiters and paginators) beside the runtime client, against a real
// infergate's admin API: a driver run by tests/integration/test_admin_js.py,
// which starts the gateway, writes the plan and checks what this reports.
//
//   node admin_test.mjs PLAN.json
//
// PLAN.json: {"admin": "http://127.0.0.1:PORT2", "runtime": "http://127.0.0.1:PORT",
//             "key": K, "secret": S, "role": ROLE_ARN, "model_url": "file://...",
//             "green_url": "file://...", "body": "CSV rows", "deadline_ms": N}
//
// Output: one JSON line per step on stdout,
//   {"step": S, "ok": true, "out": {...}}  or
//   {"step": S, "ok": false, "name", "message", "status", "fault"}
// and a last line {"done": true}. Steps run one after the other; every call
// has one attempt and a timeout, the whole run deadline_ms.

import { readFileSync } from "node:fs";
import {
    CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand,
    DeleteEndpointCommand, DeleteEndpointConfigCommand, DeleteModelCommand,
    DescribeEndpointCommand, DescribeEndpointConfigCommand, DescribeModelCommand,
    ListEndpointConfigsCommand, ListModelsCommand, SageMakerClient, UpdateEndpointCommand,
    paginateListEndpoints, waitUntilEndpointDeleted, waitUntilEndpointInService,
} from "@aws-sdk/client-sagemaker";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));

setTimeout(() => {
    console.log(JSON.stringify({ deadline: true }));
    process.exit(3);
}, plan.deadline_ms).unref();

function sagemaker(key, secret) {
    return new SageMakerClient({
        endpoint: plan.admin,
        region: "us-east-1",
        credentials: { accessKeyId: key, secretAccessKey: secret },
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ requestTimeout: 20000 }),
    });
}

const sm = sagemaker(plan.key, plan.secret);
const rt = new SageMakerRuntimeClient({
    endpoint: plan.runtime,
    region: "us-east-1",
    credentials: { accessKeyId: plan.key, secretAccessKey: plan.secret },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ requestTimeout: 20000 }),
});
// Short polls: the service defaults (30 s) are for real instances.
const waitCfg = { minDelay: 0.2, maxDelay: 0.5, maxWaitTime: 30 };

function epoch(d) {
    return d instanceof Date ? d.getTime() / 1000 : `not a Date: ${typeof d} ${d}`;
}

async function step(name, fn) {
    const t0 = performance.now();
    try {
        const out = await fn();
        console.log(JSON.stringify({ step: name, ok: true, out, ms: Math.round(performance.now() - t0) }));
    } catch (e) {
        console.log(JSON.stringify({
            step: name, ok: false, name: e?.name, message: e?.message,
            status: e?.$metadata?.httpStatusCode, fault: e?.$fault,
            ms: Math.round(performance.now() - t0),
        }));
    }
}

const model = (name, url) => sm.send(new CreateModelCommand({
    ModelName: name, ExecutionRoleArn: plan.role,
    PrimaryContainer: { Image: "kmeans", ModelDataUrl: url },
}));

const variant = (name, model, weight) => ({
    VariantName: name, ModelName: model, InitialInstanceCount: 1,
    InstanceType: "ml.m5.large", InitialVariantWeight: weight,
});

const invoke = async (endpoint, target) => {
    const r = await rt.send(new InvokeEndpointCommand({
        EndpointName: endpoint, ContentType: "text/csv", Accept: "text/csv",
        Body: plan.body, ...(target ? { TargetVariant: target } : {}),
    }));
    return { body: Buffer.from(r.Body).toString("utf8"), variant: r.InvokedProductionVariant };
};

await step("create model", async () => ({ arn: (await model("Js-Blue", plan.model_url)).ModelArn }));
await step("create green model", async () => ({ arn: (await model("Js-Green", plan.green_url)).ModelArn }));
await step("create model twice", async () => model("Js-Blue", plan.model_url));
await step("describe model", async () => {
    const d = await sm.send(new DescribeModelCommand({ ModelName: "Js-Blue" }));
    return { name: d.ModelName, arn: d.ModelArn, image: d.PrimaryContainer?.Image,
             created: epoch(d.CreationTime) };
});
await step("create config 1", async () => (await sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: "Js-Cfg1", ProductionVariants: [variant("Blue", "Js-Blue", 1)],
}))).EndpointConfigArn);
await step("create config 2", async () => (await sm.send(new CreateEndpointConfigCommand({
    EndpointConfigName: "Js-Cfg2",
    ProductionVariants: [variant("Blue", "Js-Blue", 1), variant("Green", "Js-Green", 1)],
}))).EndpointConfigArn);
await step("describe config 2", async () => {
    const d = await sm.send(new DescribeEndpointConfigCommand({ EndpointConfigName: "Js-Cfg2" }));
    return { name: d.EndpointConfigName, arn: d.EndpointConfigArn,
             variants: d.ProductionVariants.map((v) => [v.VariantName, v.ModelName, v.InitialVariantWeight]),
             created: epoch(d.CreationTime) };
});
await step("create endpoint", async () => (await sm.send(new CreateEndpointCommand({
    EndpointName: "Js-Ep", EndpointConfigName: "Js-Cfg1" }))).EndpointArn);
await step("create endpoint 2", async () => (await sm.send(new CreateEndpointCommand({
    EndpointName: "Js-Ep2", EndpointConfigName: "Js-Cfg1" }))).EndpointArn);
await step("wait in service", async () =>
    (await waitUntilEndpointInService({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep" })).state);
await step("wait in service 2", async () =>
    (await waitUntilEndpointInService({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep2" })).state);
await step("describe endpoint", async () => {
    const d = await sm.send(new DescribeEndpointCommand({ EndpointName: "Js-Ep" }));
    return { name: d.EndpointName, arn: d.EndpointArn, status: d.EndpointStatus,
             config: d.EndpointConfigName,
             variants: (d.ProductionVariants ?? []).map((v) => v.VariantName),
             created: epoch(d.CreationTime), modified: epoch(d.LastModifiedTime) };
});
await step("invoke", async () => invoke("Js-Ep"));
await step("paginate endpoints", async () => {
    const pages = [];
    for await (const page of paginateListEndpoints({ client: sm, pageSize: 1 },
                                                   { NameContains: "Js-", SortBy: "Name",
                                                     SortOrder: "Ascending" }))
        pages.push(page.Endpoints.map((e) => [e.EndpointName, e.EndpointStatus]));
    return pages;
});
await step("list models by hand", async () => {
    const names = [];
    let token, pages = 0;
    do {
        const r = await sm.send(new ListModelsCommand({ NameContains: "Js-", MaxResults: 1,
                                                        NextToken: token }));
        names.push(...r.Models.map((m) => m.ModelName));
        token = r.NextToken;
        pages++;
    } while (token && pages < 10);
    return { names: names.sort(), pages };
});
await step("list configs", async () => (await sm.send(new ListEndpointConfigsCommand({
    NameContains: "Js-", SortBy: "Name", SortOrder: "Descending" })))
    .EndpointConfigs.map((c) => c.EndpointConfigName));
await step("update endpoint", async () => (await sm.send(new UpdateEndpointCommand({
    EndpointName: "Js-Ep", EndpointConfigName: "Js-Cfg2" }))).EndpointArn);
await step("wait in service after update", async () =>
    (await waitUntilEndpointInService({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep" })).state);
await step("describe after update", async () => {
    const d = await sm.send(new DescribeEndpointCommand({ EndpointName: "Js-Ep" }));
    return { status: d.EndpointStatus, config: d.EndpointConfigName,
             variants: (d.ProductionVariants ?? []).map((v) => v.VariantName).sort() };
});
await step("invoke Green", async () => invoke("Js-Ep", "Green"));
await step("invoke Blue", async () => invoke("Js-Ep", "Blue"));
await step("delete endpoint", async () => {
    await sm.send(new DeleteEndpointCommand({ EndpointName: "Js-Ep" }));
    return "deleted";
});
await step("wait deleted", async () =>
    (await waitUntilEndpointDeleted({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep" })).state);
await step("describe deleted endpoint", async () =>
    sm.send(new DescribeEndpointCommand({ EndpointName: "Js-Ep" })));
await step("wait in service on a deleted endpoint", async () =>
    (await waitUntilEndpointInService({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep" })).state);
await step("delete endpoint 2", async () => {
    await sm.send(new DeleteEndpointCommand({ EndpointName: "Js-Ep2" }));
    return (await waitUntilEndpointDeleted({ client: sm, ...waitCfg }, { EndpointName: "Js-Ep2" })).state;
});
await step("delete configs and models", async () => {
    for (const c of ["Js-Cfg1", "Js-Cfg2"])
        await sm.send(new DeleteEndpointConfigCommand({ EndpointConfigName: c }));
    for (const m of ["Js-Blue", "Js-Green"])
        await sm.send(new DeleteModelCommand({ ModelName: m }));
    return "deleted";
});
await step("describe deleted model", async () =>
    sm.send(new DescribeModelCommand({ ModelName: "Js-Blue" })));
await step("describe missing config", async () =>
    sm.send(new DescribeEndpointConfigCommand({ EndpointConfigName: "Js-Cfg2" })));
await step("wrong secret", async () =>
    sagemaker(plan.key, "WRONG").send(new DescribeEndpointCommand({ EndpointName: "Js-Ep" })));
await step("unknown key", async () =>
    sagemaker("AKIDUNKNOWN", "WRONG").send(new DescribeEndpointCommand({ EndpointName: "Js-Ep" })));

console.log(JSON.stringify({ done: true }));
