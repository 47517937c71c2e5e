// tests/lint/k8s_lint.mjs - offline lint of infergate's container image and
// Kubernetes manifests (make k8s-lint; issue 15, point 4).
//
//   node tests/lint/k8s_lint.mjs [--root DIR]     lint DIR (default: this tree)
//   node tests/lint/k8s_lint.mjs --self-test      lint broken trees it writes to a
//                                                 temporary directory: every planted
//                                                 problem must be reported
//
// What it checks, under ROOT:
//   - every manifest `kubectl kustomize` renders for docker/k8s/{sidecar,
//     standalone,test} (and any other kustomization under docker/k8s), and
//     every raw YAML file under docker/k8s, against the Kubernetes 1.27 schemas
//     of the npm package kubernetes-models: apiVersion/kind maps to
//     kubernetes-models/<group>/<version>/<Kind>, whose validate() checks types
//     and required fields (not unknown field names). A kind the package does
//     not know is an error. Raw files a kustomization uses as patches are
//     partial objects: only their types are checked, not required fields.
//   - docker/Dockerfile and docker/model/Dockerfile with dockerfile-utils
//     (`dockerfile-utils lint FILE`; its warnings fail too, like -Werror), and
//     in docker/Dockerfile what issue 15 asks of the image: `ARG BASE` before
//     the first FROM, a non-root USER, STOPSIGNAL SIGTERM, a HEALTHCHECK on a
//     path the gateway serves.
//   - what the schemas cannot, for every pod template (Pod, Deployment, ...):
//     container names unique in the pod; every container has resources.limits
//     with cpu and memory; the infergate container (image named infergate, or
//     container named infergate) has liveness, readiness and startup probes on
//     paths the gateway routes (read from src/gateway.c) and on its listen port,
//     liveness not on /readyz (that would restart a healthy gateway whenever
//     its model is down); its infergate.conf comes from a ConfigMap in the same
//     rendering; terminationGracePeriodSeconds >= drain_timeout_ms / 1000 +
//     the preStop sleep, with drain_timeout_ms and listen taken from that
//     ConfigMap's infergate.conf, the container's INFERGATE_* environment and
//     its --flags, in the gateway's own order (file < environment < flag); a
//     model at http://127.0.0.1:PORT or localhost is served by another
//     container of the same pod (a containerPort PORT), whose preStop sleep
//     lasts at least the gateway's preStop sleep + drain_timeout_ms / 1000.
//
// Prints one line per failure ("FAIL: where: what"), then
// `k8s-lint: N passed, M failed`, and exits 1 when M > 0 (2 on bad usage or
// a missing tool). Needs kubectl (kustomize is built in; no cluster is
// contacted) and `npm ci` in tests/lint (make deps does it).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DOCKERFILE_UTILS = path.join(HERE, "node_modules", ".bin", "dockerfile-utils");
// The overlays issue 15 asks for; any other kustomization under docker/k8s is
// rendered too.
const REQUIRED_OVERLAYS = ["sidecar", "standalone", "test"];
// The gateway's defaults for what the checks read (conf/infergate.conf).
const DEFAULT_DRAIN_TIMEOUT_MS = 30000;
const DEFAULT_LISTEN = "127.0.0.1:8080";
// The model container's probe paths of the SageMaker container contract.
const CONTRACT_GET_PATHS = new Set(["/ping", "/execution-parameters"]);
// Kubernetes' default when a pod sets none.
const DEFAULT_GRACE_S = 30;

// ---- results --------------------------------------------------------------

class Results {
    constructor(quiet = false) {
        this.passed = 0;
        this.failed = 0;
        this.failures = []; // "where: what"
        this.quiet = quiet;
    }

    check(cond, where, what) {
        if (cond) {
            this.passed++;
        } else {
            this.failed++;
            this.failures.push(`${where}: ${what}`);
            if (!this.quiet)
                console.log(`FAIL: ${where}: ${what}`);
        }
        return cond;
    }
}

// ---- files ----------------------------------------------------------------

function rel(root, p) {
    return path.relative(root, p) || ".";
}

function walk(dir, out = []) {
    let ents;
    try {
        ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
        return out;
    }
    ents.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of ents) {
        const p = path.join(dir, e.name);
        if (e.isDirectory())
            walk(p, out);
        else if (e.isFile())
            out.push(p);
    }
    return out;
}

const KUSTOMIZATION_NAMES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

function kustomizationFile(dir) {
    for (const n of KUSTOMIZATION_NAMES) {
        const p = path.join(dir, n);
        if (fs.existsSync(p))
            return p;
    }
    return null;
}

// Parses a multi-document YAML text; returns {docs: [{index, value}], errors}.
function parseYaml(text) {
    const docs = [];
    const errors = [];
    YAML.parseAllDocuments(text).forEach((d, i) => {
        for (const e of d.errors)
            errors.push(`document ${i + 1}: ${e.message.split("\n")[0]}`);
        if (d.errors.length === 0) {
            const v = d.toJS({ maxAliasCount: 100 });
            if (v !== null && v !== undefined)
                docs.push({ index: i + 1, value: v });
        }
    });
    return { docs, errors };
}

// ---- schemas (kubernetes-models) ------------------------------------------

const API_VERSION_RE = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;
const KIND_RE = /^[A-Z][A-Za-z0-9]*$/;
const modelCache = new Map();

// The kubernetes-models class for apiVersion/kind, or a string saying why not.
async function modelClass(apiVersion, kind) {
    if (typeof apiVersion !== "string" || !API_VERSION_RE.test(apiVersion))
        return `apiVersion ${JSON.stringify(apiVersion)} is not GROUP/VERSION or VERSION`;
    if (typeof kind !== "string" || !KIND_RE.test(kind))
        return `kind ${JSON.stringify(kind)} is not a Kind name`;
    const key = `${apiVersion}/${kind}`;
    if (!modelCache.has(key)) {
        let cls = null;
        try {
            const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
            cls = mod[kind] || null;
        } catch {
            cls = null;
        }
        // kubernetes-models/v1/PodSpec exists too: only a top-level object
        // (one that sets apiVersion and kind itself) is a kind.
        if (cls) {
            const probe = new cls({});
            if (probe.apiVersion !== apiVersion || probe.kind !== kind)
                cls = null;
        }
        modelCache.set(key, cls);
    }
    return modelCache.get(key) || `unknown kind ${key} (not in kubernetes-models, Kubernetes 1.27)`;
}

function ajvErrors(e) {
    if (Array.isArray(e.errors) && e.errors.length)
        return e.errors;
    return [{ instancePath: "", keyword: "?", message: String(e.message || e) }];
}

function describeErrors(errs) {
    const seen = new Set();
    const out = [];
    for (const er of errs) {
        const s = `${er.instancePath || "/"} ${er.message}`;
        if (!seen.has(s)) {
            seen.add(s);
            out.push(s);
        }
    }
    return out.slice(0, 6).join("; ") + (out.length > 6 ? `; (${out.length - 6} more)` : "");
}

// Validates one object. partial: a patch, whose required fields may be
// missing (only types are checked).
async function validateObject(res, where, obj, partial = false) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj))
        return res.check(false, where, "not a Kubernetes object (a mapping with apiVersion and kind)");
    const cls = await modelClass(obj.apiVersion, obj.kind);
    if (typeof cls === "string")
        return res.check(false, where, cls);
    let errs = [];
    try {
        new cls(obj).validate();
    } catch (e) {
        errs = ajvErrors(e);
    }
    if (partial)
        errs = errs.filter((er) => er.keyword !== "required");
    return res.check(errs.length === 0, where, `schema ${obj.apiVersion}/${obj.kind}: ${describeErrors(errs)}`);
}

function objName(obj) {
    const n = obj && obj.metadata && obj.metadata.name;
    return `${obj && obj.kind}/${n === undefined ? "(no name)" : n}`;
}

// ---- the gateway's facts --------------------------------------------------

// The paths the gateway answers GET on, from its own router (src/gateway.c),
// so a route renamed there fails the manifests that probe it.
function gatewayPaths(root) {
    const src = path.join(root, "src", "gateway.c");
    let text = "";
    try {
        text = fs.readFileSync(src, "utf8");
    } catch {
        return null;
    }
    const paths = new Set();
    for (const m of text.matchAll(/strcmp\(path, "(\/[A-Za-z0-9._\/-]*)"\) == 0/g))
        paths.add(m[1]);
    // /metrics is routed but renders every endpoint's series: no probe.
    paths.delete("/metrics");
    return paths.size ? paths : null;
}

// infergate.conf's global keys (before the first [section]).
function parseIni(text) {
    const out = {};
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith(";") || line.startsWith("#"))
            continue;
        if (line.startsWith("["))
            break;
        const eq = line.indexOf("=");
        if (eq > 0)
            out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    }
    return out;
}

// Every `model = URL` of infergate.conf, in any section.
function iniModels(text) {
    const out = [];
    for (const raw of text.split("\n")) {
        const m = raw.match(/^\s*model\s*=\s*(\S+)/);
        if (m)
            out.push(m[1]);
    }
    return out;
}

// Options given as --name VALUE / --name=VALUE ('-' and '_' alike).
function flagValue(argv, name) {
    let v;
    const norm = (s) => s.replace(/-/g, "_");
    for (let i = 0; i < argv.length; i++) {
        const a = String(argv[i]);
        if (!a.startsWith("--"))
            continue;
        const eq = a.indexOf("=");
        const n = norm(eq >= 0 ? a.slice(2, eq) : a.slice(2));
        if (n !== name)
            continue;
        if (eq >= 0)
            v = a.slice(eq + 1);
        else if (i + 1 < argv.length)
            v = String(argv[++i]);
    }
    return v;
}

function listenPort(listen) {
    const m = String(listen).match(/:([0-9]+)$/);
    return m ? Number(m[1]) : null;
}

// ---- pods -----------------------------------------------------------------

function podSpecOf(obj) {
    if (!obj || typeof obj !== "object")
        return null;
    const s = obj.spec || {};
    switch (obj.kind) {
    case "Pod":
        return s;
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "ReplicationController":
    case "Job":
        return s.template && s.template.spec ? s.template.spec : null;
    case "CronJob":
        return s.jobTemplate && s.jobTemplate.spec && s.jobTemplate.spec.template ?
            s.jobTemplate.spec.template.spec || null : null;
    default:
        return null;
    }
}

function isGateway(c) {
    const image = String(c.image || "");
    const base = image.replace(/@.*$/, "").replace(/:[^/:]*$/, "").split("/").pop();
    return base === "infergate" || c.name === "infergate";
}

// The seconds a preStop hook sleeps (exec `sleep N` or the sleep action).
function preStopSleep(c) {
    const h = c.lifecycle && c.lifecycle.preStop;
    if (!h)
        return 0;
    if (h.sleep && Number.isFinite(Number(h.sleep.seconds)))
        return Number(h.sleep.seconds);
    if (h.exec && Array.isArray(h.exec.command)) {
        const m = h.exec.command.join(" ").match(/(?:^|[\s;&|(])sleep\s+([0-9]+(?:\.[0-9]+)?)/);
        if (m)
            return Number(m[1]);
    }
    return 0;
}

// The container's infergate.conf: {text, from} from a ConfigMap of the same
// rendering mounted into it, or {error}.
function gatewayConf(spec, c, configMaps) {
    const vols = new Map((spec.volumes || []).map((v) => [v.name, v]));
    const found = [];
    for (const vm of c.volumeMounts || []) {
        const v = vols.get(vm.name);
        if (!v)
            continue;
        const names = [];
        if (v.configMap)
            names.push(v.configMap.name);
        if (v.projected && Array.isArray(v.projected.sources))
            for (const s of v.projected.sources)
                if (s.configMap)
                    names.push(s.configMap.name);
        for (const n of names) {
            const cm = configMaps.get(n);
            if (!cm)
                return { error: `volume ${v.name} mounts ConfigMap ${n}, which this rendering does not hold` };
            for (const [k, text] of Object.entries(cm.data || {}))
                if (k.endsWith(".conf") && (!vm.subPath || vm.subPath === k))
                    found.push({ text: String(text), from: `ConfigMap ${n} key ${k}` });
        }
    }
    if (found.length === 0)
        return { error: "no ConfigMap with an infergate .conf key is mounted into the infergate container" };
    if (found.length > 1)
        return { error: `several .conf files mounted (${found.map((f) => f.from).join(", ")}): which one is read?` };
    return found[0];
}

function probePort(c, port) {
    if (typeof port === "number")
        return port;
    for (const p of c.ports || [])
        if (p.name === port)
            return p.containerPort;
    return null;
}

// Checks one pod template that the schemas cannot.
function checkPod(res, where, spec, configMaps, gwPaths) {
    const containers = [...(spec.initContainers || []), ...(spec.containers || [])]
        .filter((c) => c && typeof c === "object");
    if (containers.length === 0)
        return; // the schema check reports it

    const names = containers.map((c) => c.name);
    const dups = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
    res.check(dups.length === 0, where, `container names not unique: ${dups.join(", ")}`);

    for (const c of containers) {
        const lim = (c.resources && c.resources.limits) || {};
        const miss = ["cpu", "memory"].filter((k) => lim[k] === undefined || lim[k] === null || lim[k] === "");
        res.check(miss.length === 0, `${where} container ${c.name}`,
            `resources.limits has no ${miss.join(" and ")} (every container needs cpu and memory limits)`);
    }

    const ports = new Set();
    for (const c of spec.containers || [])
        for (const p of (c && c.ports) || [])
            ports.add(p.containerPort);

    const gws = (spec.containers || []).filter((c) => c && isGateway(c));
    for (const c of (spec.containers || []).filter((x) => x && !isGateway(x))) {
        for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"]) {
            const g = c[kind] && c[kind].httpGet;
            if (g)
                res.check(CONTRACT_GET_PATHS.has(String(g.path || "/").split("?")[0]),
                    `${where} container ${c.name}`,
                    `${kind} GET ${g.path || "/"}: a model container answers only ` +
                    `${[...CONTRACT_GET_PATHS].join(" and ")} (SageMaker container contract)`);
        }
    }

    for (const c of gws) {
        const cw = `${where} container ${c.name}`;
        const env = {};
        for (const e of c.env || [])
            if (e && typeof e.value === "string")
                env[e.name] = e.value;
        const argv = [...(c.command || []), ...(c.args || [])];

        const conf = gatewayConf(spec, c, configMaps);
        let ini = {};
        let models = [];
        if (res.check(!conf.error, cw, conf.error)) {
            ini = parseIni(conf.text);
            models = iniModels(conf.text);
        }
        // The gateway's order: file < INFERGATE_<NAME> < --name.
        const opt = (name, dflt) => {
            let v = dflt;
            let from = "the default";
            if (ini[name] !== undefined) {
                v = ini[name];
                from = conf.from;
            }
            const ev = env[`INFERGATE_${name.toUpperCase()}`];
            if (ev !== undefined) {
                v = ev;
                from = `env INFERGATE_${name.toUpperCase()}`;
            }
            const fv = flagValue(argv, name);
            if (fv !== undefined) {
                v = fv;
                from = `--${name}`;
            }
            return { v, from };
        };

        const listen = opt("listen", DEFAULT_LISTEN);
        const lport = listenPort(listen.v);
        res.check(lport !== null, cw, `listen ${JSON.stringify(listen.v)} (${listen.from}) has no :PORT`);
        if (lport !== null)
            res.check(ports.size === 0 || ports.has(lport), cw,
                `listen port ${lport} (${listen.from}) is no containerPort of the pod`);

        const probes = {};
        for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"]) {
            const p = c[kind];
            if (!res.check(p && p.httpGet, cw, `no ${kind} with httpGet`))
                continue;
            const g = p.httpGet;
            const pth = String(g.path || "/").split("?")[0];
            probes[kind] = pth;
            res.check(gwPaths.has(pth), cw,
                `${kind} GET ${pth}: the gateway does not route it (it routes ${[...gwPaths].join(", ")})`);
            const pp = probePort(c, g.port);
            res.check(pp !== null && pp === lport, cw,
                `${kind} port ${JSON.stringify(g.port)} is not the gateway's listen port ${lport}`);
        }
        if (probes.livenessProbe)
            res.check(probes.livenessProbe !== "/readyz", cw,
                "livenessProbe on /readyz restarts a healthy gateway whenever its model is down " +
                "or it drains: use /healthz");

        const drain = opt("drain_timeout_ms", String(DEFAULT_DRAIN_TIMEOUT_MS));
        const drainMs = Number(drain.v);
        let drainEnd = null; // seconds after the pod's deletion the drain may last
        if (res.check(/^[0-9]+$/.test(String(drain.v)), cw,
            `drain_timeout_ms ${JSON.stringify(drain.v)} (${drain.from}) is not a number`)) {
            const sleep = preStopSleep(c);
            const grace = spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_S;
            const need = drainMs / 1000 + sleep;
            drainEnd = need;
            res.check(typeof grace === "number" && grace >= need, where,
                `terminationGracePeriodSeconds ${grace}${spec.terminationGracePeriodSeconds === undefined ?
                    " (the default)" : ""} < drain_timeout_ms ${drainMs} (${drain.from}) / 1000 + ` +
                `preStop sleep ${sleep} s = ${need} s: the kubelet would SIGKILL a draining gateway`);
        }

        for (const url of models) {
            const m = url.match(/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(?::([0-9]+))?(?:\/|$)/);
            if (!m)
                continue;
            const port = Number(m[2] || (url.startsWith("https") ? 443 : 80));
            const servers = (spec.containers || []).filter((o) => o !== c &&
                (o.ports || []).some((p) => p.containerPort === port));
            res.check(servers.length > 0, cw, `model ${url} (${conf.from}): no other container ` +
                `of the pod has containerPort ${port}`);
            // The model gets SIGTERM after its own preStop: it must outlast
            // the gateway's preStop and drain, whose calls it answers.
            for (const o of servers)
                if (drainEnd !== null)
                    res.check(preStopSleep(o) >= drainEnd, `${where} container ${o.name}`,
                        `preStop sleep ${preStopSleep(o)} s < the gateway's preStop sleep + ` +
                        `drain_timeout_ms / 1000 = ${drainEnd} s: the model would stop while ` +
                        `${c.name}'s drain still calls it (${url})`);
        }
    }
}

// Schema-checks every object of one rendering and pod-checks its workloads.
async function checkObjects(res, where, objs, gwPaths) {
    const configMaps = new Map();
    for (const { value } of objs)
        if (value && value.kind === "ConfigMap" && value.metadata)
            configMaps.set(value.metadata.name, value);
    let nwork = 0;
    for (const { index, value } of objs) {
        const w = `${where} #${index} ${objName(value)}`;
        await validateObject(res, w, value);
        const spec = podSpecOf(value);
        if (spec) {
            nwork++;
            if (gwPaths)
                checkPod(res, w, spec, configMaps, gwPaths);
        }
    }
    return nwork;
}

// ---- kustomize -------------------------------------------------------------

// What a tree of files holds, as a cache key (the self-test lints many
// trees that differ in one file: unchanged overlays are not rendered again).
function treeKey(dir) {
    const h = createHash("sha256");
    for (const f of walk(dir))
        h.update(`${path.relative(dir, f)}\0`).update(fs.readFileSync(f)).update("\0");
    return h.digest("hex");
}

const kustomizeCache = new Map();

function kustomize(dir, k8s) {
    const key = `${path.relative(k8s, dir)}\0${treeKey(k8s)}`;
    if (!kustomizeCache.has(key))
        kustomizeCache.set(key, kustomizeRun(dir));
    return kustomizeCache.get(key);
}

function kustomizeRun(dir) {
    const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.error)
        return { error: `kubectl kustomize: ${r.error.message} (kubectl comes with the machine image)` };
    if (r.status !== 0)
        return { error: `kubectl kustomize exited ${r.status}: ${(r.stderr || "").trim().split("\n").slice(-3).join(" ")}` };
    return { text: r.stdout };
}

// Roles of the files kustomizations name: "resource" (a whole object),
// "patch" (a partial one), "json6902" (a JSON patch), "config" (kustomize's
// own transformer or generator configs), "data" (generator inputs).
function kustomizationRoles(root, kfiles, res) {
    const roles = new Map();
    const add = (base, p, role) => {
        if (typeof p !== "string" || p.includes("://") || p.includes("\n"))
            return; // remote, or an inline patch
        const abs = path.resolve(base, p.replace(/^[^=]*=/, (s) => (role === "data" ? "" : s)));
        if (!roles.has(abs))
            roles.set(abs, role);
    };
    for (const kf of kfiles) {
        const base = path.dirname(kf);
        const { docs, errors } = parseYaml(fs.readFileSync(kf, "utf8"));
        if (!res.check(errors.length === 0 && docs.length === 1, rel(root, kf),
            errors.length ? errors.join("; ") : "not one YAML document"))
            continue;
        const k = docs[0].value || {};
        const kindOk = (k.kind === undefined || k.kind === "Kustomization" || k.kind === "Component") &&
            (k.apiVersion === undefined || /^kustomize\.config\.k8s\.io\/v1(beta1|alpha1)$/.test(k.apiVersion));
        res.check(kindOk, rel(root, kf), `apiVersion/kind ${k.apiVersion}/${k.kind} is not a kustomization`);
        for (const r of [...(k.resources || []), ...(k.bases || []), ...(k.components || [])])
            add(base, r, "resource");
        for (const p of k.patchesStrategicMerge || [])
            add(base, p, "patch");
        for (const p of [...(k.patches || []), ...(k.patchesJson6902 || [])])
            if (p && p.path)
                add(base, p.path, /\.json$/.test(p.path) ? "json6902" : "patch");
        for (const g of [...(k.configMapGenerator || []), ...(k.secretGenerator || [])]) {
            for (const f of (g && g.files) || [])
                add(base, String(f).replace(/^[^=]*=/, ""), "data");
            for (const f of (g && g.envs) || [])
                add(base, f, "data");
        }
        for (const f of [...(k.transformers || []), ...(k.generators || []), ...(k.validators || []),
            ...(k.configurations || []), ...(k.crds || [])])
            add(base, f, "config");
        for (const r of k.replacements || [])
            if (r && r.path)
                add(base, r.path, "config");
    }
    return roles;
}

// A JSON 6902 patch is a list of {op, path}; YAML or JSON.
function isJson6902(v) {
    return Array.isArray(v) && v.every((o) => o && typeof o.op === "string" && typeof o.path === "string");
}

async function lintManifests(res, root, gwPaths) {
    const k8s = path.join(root, "docker", "k8s");
    if (!res.check(fs.existsSync(k8s), rel(root, k8s), "missing (issue 15: docker/k8s/{sidecar,standalone,test})"))
        return;
    const files = walk(k8s);
    const kfiles = files.filter((f) => KUSTOMIZATION_NAMES.includes(path.basename(f)));
    const roles = kustomizationRoles(root, kfiles, res);

    // Render every overlay: the required ones, and every other kustomization
    // that is not a Component (those cannot be rendered alone).
    const dirs = new Set(REQUIRED_OVERLAYS.map((o) => path.join(k8s, o)));
    for (const kf of kfiles) {
        const { docs } = parseYaml(fs.readFileSync(kf, "utf8"));
        if (!(docs[0] && docs[0].value && docs[0].value.kind === "Component"))
            dirs.add(path.dirname(kf));
    }
    for (const dir of [...dirs].sort()) {
        const where = `kubectl kustomize ${rel(root, dir)}`;
        if (!res.check(kustomizationFile(dir) !== null, rel(root, dir), "no kustomization.yaml"))
            continue;
        const r = kustomize(dir, k8s);
        if (!res.check(!r.error, where, r.error))
            continue;
        const { docs, errors } = parseYaml(r.text);
        if (!res.check(errors.length === 0, where, `output is not YAML: ${errors.join("; ")}`))
            continue;
        if (!res.check(docs.length > 0, where, "renders no object"))
            continue;
        const nwork = await checkObjects(res, where, docs, gwPaths);
        if (REQUIRED_OVERLAYS.includes(path.basename(dir)))
            res.check(nwork > 0, where, "renders no Pod or workload (Deployment, ...)");
    }

    // Every raw YAML file, by the role its kustomization gives it.
    for (const f of files.filter((x) => /\.ya?ml$/.test(x) && !KUSTOMIZATION_NAMES.includes(path.basename(x)))) {
        const where = rel(root, f);
        const role = roles.get(f) || "standalone";
        const { docs, errors } = parseYaml(fs.readFileSync(f, "utf8"));
        if (!res.check(errors.length === 0, where, `not YAML: ${errors.join("; ")}`))
            continue;
        if (!res.check(docs.length > 0 || role === "data", where, "holds no document"))
            continue;
        if (role === "data" || role === "config")
            continue;
        if (role === "json6902") {
            for (const { index, value } of docs)
                res.check(isJson6902(value), `${where} #${index}`, "JSON 6902 patch is not a list of {op, path}");
            continue;
        }
        if (role === "patch") {
            for (const { index, value } of docs) {
                if (isJson6902(value)) {
                    res.passed++;
                    continue;
                }
                await validateObject(res, `${where} #${index} ${objName(value)} (patch)`, value, true);
            }
            continue;
        }
        // A whole object: a kustomization's resource, or a file of its own
        // (which then must stand alone, as for `podman kube play FILE`).
        if (role === "resource")
            for (const { index, value } of docs)
                await validateObject(res, `${where} #${index} ${objName(value)}`, value);
        else
            await checkObjects(res, where, docs, gwPaths);
    }
}

// ---- Dockerfiles -------------------------------------------------------------

// Instructions of a Dockerfile: [{line, ins, args}], continuations joined.
function dockerInstructions(text) {
    const out = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
        let l = lines[i];
        if (/^\s*(#|$)/.test(l))
            continue;
        const start = i + 1;
        while (/\\\s*$/.test(l) && i + 1 < lines.length) {
            l = l.replace(/\\\s*$/, " ");
            i++;
            if (!/^\s*#/.test(lines[i]))
                l += lines[i];
        }
        const m = l.trim().match(/^(\S+)\s*(.*)$/);
        if (m)
            out.push({ line: start, ins: m[1].toUpperCase(), args: m[2].trim() });
    }
    return out;
}

const dockerfileCache = new Map();

// `dockerfile-utils lint FILE`, once per content.
function dockerfileUtilsLint(file) {
    const key = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    if (!dockerfileCache.has(key))
        dockerfileCache.set(key, spawnSync(DOCKERFILE_UTILS, ["lint", file], { encoding: "utf8" }));
    return dockerfileCache.get(key);
}

function lintDockerfile(res, root, file, gwPaths, isGatewayImage) {
    const where = rel(root, file);
    if (!res.check(fs.existsSync(file), where, "missing (issue 15)"))
        return;
    const r = dockerfileUtilsLint(file);
    if (!res.check(!r.error, where, `dockerfile-utils: ${r.error && r.error.message} (make deps runs npm ci in tests/lint)`))
        return;
    const out = `${r.stdout || ""}${r.stderr || ""}`.trim();
    res.check(r.status === 0 && !/^(Error|Warning):/m.test(out), where,
        `dockerfile-utils lint (exit ${r.status}): ${out.replace(/\n+/g, " | ")}`);
    if (!isGatewayImage)
        return;

    const ins = dockerInstructions(fs.readFileSync(file, "utf8"));
    const firstFrom = ins.findIndex((x) => x.ins === "FROM");
    res.check(ins.slice(0, Math.max(firstFrom, 0)).some((x) => x.ins === "ARG" && /^BASE(=|\s|$)/.test(x.args)),
        where, "no `ARG BASE` before the first FROM (the tests build from a local base image)");
    res.check(ins.some((x) => x.ins === "FROM" && /\$\{?BASE\}?/.test(x.args)), where,
        "no FROM ${BASE}");
    const lastFrom = ins.map((x) => x.ins).lastIndexOf("FROM");
    const final = ins.slice(lastFrom + 1);
    const users = final.filter((x) => x.ins === "USER");
    const user = users.length ? users[users.length - 1].args.split(":")[0] : "root";
    res.check(!["root", "0"].includes(user), where, `the final stage runs as ${user} (issue 15: a non-root user)`);
    const stop = ins.filter((x) => x.ins === "STOPSIGNAL").pop();
    res.check(stop && /^(SIGTERM|TERM|15)$/.test(stop.args), where,
        `STOPSIGNAL is ${stop ? stop.args : "not set"}: the gateway drains on SIGTERM`);
    const hc = ins.filter((x) => x.ins === "HEALTHCHECK").pop();
    if (res.check(hc && !/^NONE$/i.test(hc.args), where, "no HEALTHCHECK")) {
        const m = hc.args.match(/https?:\/\/[^/\s"']+(\/[^\s"'?]*)/);
        res.check(!m || gwPaths.has(m[1]), where, `HEALTHCHECK GET ${m && m[1]}: the gateway does not route it`);
    }
}

// ---- the whole tree ------------------------------------------------------------

async function lintTree(root, res) {
    const gwPaths = gatewayPaths(root);
    res.check(gwPaths !== null, rel(root, path.join(root, "src", "gateway.c")),
        "no route found (strcmp(path, \"/...\") == 0): cannot check probe paths");
    await lintManifests(res, root, gwPaths || new Set());
    lintDockerfile(res, root, path.join(root, "docker", "Dockerfile"), gwPaths || new Set(), true);
    lintDockerfile(res, root, path.join(root, "docker", "model", "Dockerfile"), gwPaths || new Set(), false);
}

// ---- --self-test: planted problems must be reported ------------------------------

const GOOD_CONF = `listen = 0.0.0.0:8081
drain_timeout_ms = 20000

[endpoint model]
model = http://127.0.0.1:8080
`;

function goodPod(name) {
    return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name },
        spec: {
            terminationGracePeriodSeconds: 30,
            containers: [
                {
                    name: "infergate",
                    image: "localhost/infergate:test",
                    args: ["--config", "/etc/infergate/infergate.conf"],
                    ports: [{ containerPort: 8081 }],
                    resources: { limits: { cpu: "1", memory: "256Mi" } },
                    livenessProbe: { httpGet: { path: "/healthz", port: 8081 } },
                    readinessProbe: { httpGet: { path: "/readyz", port: 8081 } },
                    startupProbe: { httpGet: { path: "/ping", port: 8081 } },
                    lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } },
                    volumeMounts: [{ name: "conf", mountPath: "/etc/infergate" }],
                },
                {
                    name: "model",
                    image: "localhost/infergate-model:test",
                    ports: [{ containerPort: 8080 }],
                    resources: { limits: { cpu: "500m", memory: "128Mi" } },
                    livenessProbe: { httpGet: { path: "/ping", port: 8080 } },
                    lifecycle: { preStop: { exec: { command: ["sleep", "25"] } } },
                },
            ],
            volumes: [{ name: "conf", configMap: { name: "infergate-conf" } }],
        },
    };
}

function writeFiles(base, files) {
    for (const [p, content] of Object.entries(files)) {
        const abs = path.join(base, p);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        fs.writeFileSync(abs, typeof content === "string" ? content : YAML.stringify(content));
    }
}

const KUST = (extra) => ({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", ...extra });
const GOOD_DOCKERFILE = `ARG BASE=debian:bookworm-slim
FROM \${BASE} AS build
RUN echo build
FROM \${BASE}
COPY --from=build /etc/hostname /tmp/x
USER infergate
STOPSIGNAL SIGTERM
HEALTHCHECK CMD curl -fsS http://127.0.0.1:8081/healthz || exit 1
CMD ["infergate"]
`;

// A tree whose every overlay is clean: the positive control.
function goodTree(base, gatewayC) {
    writeFiles(base, {
        "src/gateway.c": gatewayC,
        "docker/Dockerfile": GOOD_DOCKERFILE,
        "docker/model/Dockerfile": "FROM debian\nCMD [\"fake-container\"]\n",
        "docker/k8s/sidecar/kustomization.yaml": KUST({
            resources: ["pod.yaml"],
            configMapGenerator: [{ name: "infergate-conf", files: ["infergate.conf"] }],
        }),
        "docker/k8s/sidecar/infergate.conf": GOOD_CONF,
        "docker/k8s/sidecar/pod.yaml": goodPod("infergate-sidecar"),
        "docker/k8s/standalone/kustomization.yaml": KUST({ resources: ["../sidecar"], namePrefix: "sa-" }),
        "docker/k8s/test/kustomization.yaml": KUST({
            resources: ["../sidecar"],
            patches: [{ path: "patch.yaml" }],
        }),
        "docker/k8s/test/patch.yaml": {
            apiVersion: "v1", kind: "Pod", metadata: { name: "infergate-sidecar" },
            spec: { containers: [{ name: "model", imagePullPolicy: "Never" }] },
        },
    });
}

// Each case: files written over a good tree, and the substrings the lint
// must report (each is one check of the self-test).
function badCases() {
    const cases = [];
    const pod = (mut) => {
        const p = goodPod("infergate-sidecar");
        mut(p.spec, p);
        return p;
    };
    cases.push(["containers of the wrong type", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers = "infergate"; }),
    }, ["/spec/containers must be array"]]);
    cases.push(["no containers", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { delete s.containers; }),
    }, ["must have required property containers"]]);
    cases.push(["a port as a string", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[1].ports[0].containerPort = "8080"; }),
    }, ["/spec/containers/1/ports/0/containerPort must be integer"]]);
    cases.push(["an unknown kind", {
        "docker/k8s/sidecar/extra.yaml": { apiVersion: "v1", kind: "Podd", metadata: { name: "x" } },
        "docker/k8s/sidecar/kustomization.yaml": KUST({
            resources: ["pod.yaml", "extra.yaml"],
            configMapGenerator: [{ name: "infergate-conf", files: ["infergate.conf"] }],
        }),
    }, ["unknown kind v1/Podd"]]);
    cases.push(["a non-kind type of the package", {
        "docker/k8s/extra.yaml": { apiVersion: "v1", kind: "PodSpec", containers: [] },
    }, ["unknown kind v1/PodSpec"]]);
    cases.push(["a Deployment without a template's containers", {
        "docker/k8s/deploy.yaml": {
            apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" },
            spec: { selector: { matchLabels: { a: "b" } }, template: { spec: {} } },
        },
    }, ["docker/k8s/deploy.yaml #1 Deployment/d: schema apps/v1/Deployment: /spec/template/spec must have required property containers"]]);
    cases.push(["a patch of the wrong type", {
        "docker/k8s/test/patch.yaml": {
            apiVersion: "v1", kind: "Pod", metadata: { name: "infergate-sidecar" },
            spec: { terminationGracePeriodSeconds: "lots" },
        },
    }, ["(patch): schema v1/Pod: /spec/terminationGracePeriodSeconds must be integer"]]);
    cases.push(["not YAML", {
        "docker/k8s/broken.yaml": "a: [1, 2\n",
    }, ["docker/k8s/broken.yaml: not YAML"]]);
    cases.push(["duplicate container names", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[1].name = "infergate"; }),
    }, ["container names not unique: infergate"]]);
    cases.push(["no limits", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[1].resources = { requests: { cpu: "1" } }; }),
    }, ["container model: resources.limits has no cpu and memory"]]);
    cases.push(["a probe path the gateway does not route", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[0].readinessProbe.httpGet.path = "/ready"; }),
    }, ["readinessProbe GET /ready: the gateway does not route it"]]);
    cases.push(["liveness on /readyz", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[0].livenessProbe.httpGet.path = "/readyz"; }),
    }, ["livenessProbe on /readyz restarts a healthy gateway"]]);
    cases.push(["a probe on the wrong port", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[0].startupProbe.httpGet.port = 8080; }),
    }, ["startupProbe port 8080 is not the gateway's listen port 8081"]]);
    cases.push(["no startup probe", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { delete s.containers[0].startupProbe; }),
    }, ["no startupProbe with httpGet"]]);
    cases.push(["a model probe outside the contract", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[1].livenessProbe.httpGet.path = "/healthz"; }),
    }, ["container model: livenessProbe GET /healthz: a model container answers only"]]);
    cases.push(["grace shorter than drain + preStop (file)", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.terminationGracePeriodSeconds = 24; }),
    }, ["terminationGracePeriodSeconds 24 < drain_timeout_ms 20000 (ConfigMap infergate-conf-"]]);
    cases.push(["grace shorter than drain + preStop (environment)", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => {
            s.containers[0].env = [{ name: "INFERGATE_DRAIN_TIMEOUT_MS", value: "28000" }];
        }),
    }, ["terminationGracePeriodSeconds 30 < drain_timeout_ms 28000 (env INFERGATE_DRAIN_TIMEOUT_MS) / 1000 + preStop sleep 5 s = 33 s"]]);
    cases.push(["grace shorter than drain + preStop (flag, sh -c sleep)", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => {
            s.containers[0].args.push("--drain-timeout-ms=25000");
            s.containers[0].lifecycle.preStop.exec.command = ["/bin/sh", "-c", "sleep 6"];
        }),
    }, ["< drain_timeout_ms 25000 (--drain_timeout_ms) / 1000 + preStop sleep 6 s = 31 s"]]);
    cases.push(["grace left to the default", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { delete s.terminationGracePeriodSeconds; }),
        "docker/k8s/sidecar/infergate.conf": GOOD_CONF.replace("20000", "30000"),
    }, ["terminationGracePeriodSeconds 30 (the default) < drain_timeout_ms 30000"]]);
    cases.push(["a model that stops before the gateway's drain ends", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.containers[1].lifecycle.preStop.exec.command = ["sleep", "10"]; }),
    }, ["container model: preStop sleep 10 s < the gateway's preStop sleep + drain_timeout_ms / 1000 = 25 s"]]);
    cases.push(["a model without preStop", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { delete s.containers[1].lifecycle; }),
    }, ["container model: preStop sleep 0 s < the gateway's preStop sleep + drain_timeout_ms / 1000 = 25 s"]]);
    cases.push(["no ConfigMap mounted", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { delete s.volumes; delete s.containers[0].volumeMounts; }),
    }, ["no ConfigMap with an infergate .conf key is mounted"]]);
    cases.push(["a ConfigMap the rendering lacks", {
        "docker/k8s/sidecar/pod.yaml": pod((s) => { s.volumes[0].configMap.name = "elsewhere"; }),
    }, ["mounts ConfigMap elsewhere, which this rendering does not hold"]]);
    cases.push(["a model port no container serves", {
        "docker/k8s/sidecar/infergate.conf": GOOD_CONF.replace("127.0.0.1:8080", "127.0.0.1:9090"),
    }, ["model http://127.0.0.1:9090", "has containerPort 9090"]]);
    cases.push(["listen on a port the pod does not expose", {
        "docker/k8s/sidecar/infergate.conf": GOOD_CONF.replace("0.0.0.0:8081", "0.0.0.0:8082"),
    }, ["listen port 8082 (ConfigMap infergate-conf-", "is no containerPort of the pod"]]);
    cases.push(["a missing overlay", {
        "docker/k8s/standalone/kustomization.yaml": null,
    }, ["docker/k8s/standalone: no kustomization.yaml"]]);
    cases.push(["an overlay kustomize refuses", {
        "docker/k8s/test/kustomization.yaml": KUST({ resources: ["../nowhere"] }),
    }, ["kubectl kustomize docker/k8s/test: kubectl kustomize exited 1"]]);
    cases.push(["a broken Dockerfile", {
        "docker/Dockerfile": GOOD_DOCKERFILE.replace("RUN echo build", "RUNN echo build"),
        "docker/model/Dockerfile": "FROM debian\nEXPOSE port\n",
    }, ["docker/Dockerfile: dockerfile-utils lint (exit 1):", "Unknown instruction: RUNN",
        "docker/model/Dockerfile: dockerfile-utils lint (exit 1):", "Invalid containerPort: port"]]);
    cases.push(["a Dockerfile warning", {
        "docker/model/Dockerfile": "FROM debian\nMAINTAINER me\n",
    }, ["docker/model/Dockerfile: dockerfile-utils lint (exit 0):", "MAINTAINER has been deprecated"]]);
    cases.push(["an image run as root, no STOPSIGNAL, no HEALTHCHECK, no ARG BASE", {
        "docker/Dockerfile": "FROM debian:bookworm-slim\nUSER root\nCMD [\"infergate\"]\n",
    }, ["no `ARG BASE` before the first FROM", "no FROM ${BASE}", "the final stage runs as root",
        "STOPSIGNAL is not set", "docker/Dockerfile: no HEALTHCHECK"]]);
    cases.push(["a HEALTHCHECK on a path the gateway lacks", {
        "docker/Dockerfile": GOOD_DOCKERFILE.replace("/healthz", "/health"),
    }, ["HEALTHCHECK GET /health: the gateway does not route it"]]);
    cases.push(["a gateway that routes no probe path", {
        "src/gateway.c": "int main(void) { return 0; }\n",
    }, ["src/gateway.c: no route found"]]);
    return cases;
}

async function selfTest(realRoot) {
    const gatewayC = fs.readFileSync(path.join(realRoot, "src", "gateway.c"), "utf8");
    const st = new Results();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-lint-self-"));
    try {
        // The positive control: a clean tree passes, with every check counted.
        const good = path.join(tmp, "good");
        goodTree(good, gatewayC);
        const r = new Results(true);
        await lintTree(good, r);
        st.check(r.failed === 0 && r.passed > 20, "self-test clean tree",
            `${r.passed} passed, ${r.failed} failed: ${r.failures.join(" || ")}`);

        let n = 0;
        for (const [name, files, wants] of badCases()) {
            const dir = path.join(tmp, `bad${++n}`);
            goodTree(dir, gatewayC);
            for (const [p, c] of Object.entries(files)) {
                if (c === null)
                    fs.rmSync(path.join(dir, p));
                else
                    writeFiles(dir, { [p]: c });
            }
            const b = new Results(true);
            await lintTree(dir, b);
            st.check(b.failed > 0, `self-test "${name}"`, "the lint passed a broken tree");
            const all = b.failures.join("\n");
            for (const w of wants)
                st.check(all.includes(w), `self-test "${name}"`,
                    `no failure reported containing ${JSON.stringify(w)}; got: ${b.failures.join(" || ") || "none"}`);
        }
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    console.log(`k8s-lint --self-test: ${st.passed} passed, ${st.failed} failed`);
    return st.failed === 0;
}

// ---- main ---------------------------------------------------------------------

async function main(argv) {
    let root = path.resolve(HERE, "..", "..");
    let self = false;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--self-test")
            self = true;
        else if (argv[i] === "--root" && i + 1 < argv.length)
            root = path.resolve(argv[++i]);
        else {
            console.error("usage: node tests/lint/k8s_lint.mjs [--root DIR] [--self-test]");
            return 2;
        }
    }
    if (spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).error) {
        console.error("k8s-lint: kubectl not found (it comes with the machine image; kustomize is built in)");
        return 2;
    }
    if (!fs.existsSync(DOCKERFILE_UTILS)) {
        console.error(`k8s-lint: ${rel(root, DOCKERFILE_UTILS)} missing: run make deps (npm ci in tests/lint)`);
        return 2;
    }
    if (self)
        return (await selfTest(root)) ? 0 : 1;
    const res = new Results();
    await lintTree(root, res);
    console.log(`k8s-lint: ${res.passed} passed, ${res.failed} failed`);
    return res.failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
