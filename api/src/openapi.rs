//! The OpenAPI 3.1 document served at `/v1/openapi.json`, written out by
//! hand from the routes in `routes/` (a test checks every route is listed).

use serde_json::{Value, json};

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(code: &str, desc: &str, schema: Value) -> Value {
    json!({
        code: {"description": desc, "content": {"application/json": {"schema": schema}}},
        "400": {"description": "bad input; the message names the node and field",
                "content": {"application/json": {"schema": r("Fault")}}},
        "404": {"description": "not found", "content": {"application/json": {"schema": r("Fault")}}},
    })
}

fn op(summary: &str, params: Vec<Value>, request: Option<Value>, responses: Value) -> Value {
    let mut o = json!({"summary": summary, "parameters": params, "responses": responses});
    if let Some(b) = request {
        o["requestBody"] = b;
    }
    o
}

fn q(name: &str, desc: &str, required: bool) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": desc,
           "schema": {"type": "string"}})
}

fn p(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

pub fn document() -> Value {
    // The request history, built apart (one json! that large overflows
    // the macro's recursion limit).
    let requests = json!({"get": op("the latest bulk actions, newest first", vec![q("limit", "how many (1-1000, default 50)", false)], None, ok("200", "requests", json!({"type": "object", "properties": {"requests": {"type": "array", "items": r("Request")}}})))});
    let one = json!({"allOf": [r("Request"), {"type": "object", "properties": {
        "results": {"type": "object", "additionalProperties": {"type": "string"}},
        "failed_nodes": {"type": "array", "items": {"type": "string"}},
        "error_kinds": {"type": "object", "additionalProperties": r("ErrorKind")}}}]});
    let drivers = json!({
        "/v1/drivers": {"get": op("hardware types (one per mgt), their interfaces and the control_info keys each reads", vec![], None, ok("200", "drivers", json!({"type": "object", "properties": {"drivers": {"type": "array", "items": r("Driver")}, "common": {"type": "object"}}})))},
        "/v1/drivers/{name}": {"get": op("one hardware type", vec![p("name")], None, ok("200", "driver", r("Driver")))},
    });
    let request = json!({"get": op("one bulk action with every node's result (the id is the reply's xcat3-request-id header)", vec![p("id")], None, ok("200", "request", one))});
    let fields = || q("fields", "comma-separated fields to return", false);
    let range = || {
        q(
            "noderange",
            "xCAT noderange, e.g. rack[1-2]n[01-48],-rack1n07; replaces the body's node list",
            false,
        )
    };
    let results = r("NodeResults");
    let single = |schema: &str, key: &str, list_key: &str| -> (Value, Value) {
        (
            json!({
                "get": op(&format!("list {list_key}"), vec![fields()], None, ok("200", "list", json!({"type": "object", "properties": {list_key: {"type": "array", "items": r(schema)}}}))),
                "post": op(&format!("create a {key}"), vec![], Some(body(r(schema))), ok("201", "created", json!({"type": "object"}))),
            }),
            json!({
                "get": op(&format!("show a {key}"), vec![p(key), fields()], None, ok("200", key, r(schema))),
                "patch": op(&format!("update a {key} with JSON patch"), vec![p(key)], Some(body(r("Patches"))), ok("200", "updated", r(schema))),
                "delete": op(&format!("delete a {key}"), vec![p(key)], None, json!({"202": {"description": "deleted"}, "404": {"description": "not found"}})),
            }),
        )
    };
    // Hardware inspection (routes/inspect.rs): a successful node's value
    // is its result document, a failure its message (kind in error_kinds).
    let per_node = |schema: Value| {
        json!({"type": "object", "properties": {
            "nodes": {"type": "object", "additionalProperties": {"oneOf": [schema, {"type": "string", "description": "the node's error"}]}},
            "error_kinds": {"type": "object", "additionalProperties": r("ErrorKind")}}})
    };
    let inspect = json!({
        "/v1/nodes/inventory": {"get": op("hardware inventory per node: stored (with read_at), or read from the BMCs now with refresh=true (and stored)", vec![range(), q("refresh", "true: read every BMC now", false)], Some(body(r("NodeNames"))), ok("200", "per-node inventory or error", per_node(r("Inventory"))))},
        "/v1/nodes/vitals": {"get": op("sensor readings per node", vec![range(), q("sensors", "temp, fan, voltage, power or all (default)", false)], Some(body(r("NodeNames"))), ok("200", "per-node readings or error", per_node(json!({"type": "array", "items": r("Reading")}))))},
        "/v1/nodes/eventlog": {
            "get": op("the newest event-log (SEL) entries per node, oldest first", vec![range(), q("count", "entries (1-4096, default 20)", false)], Some(body(r("NodeNames"))), ok("200", "per-node log or error", per_node(r("EventLog")))),
            "delete": op("read, then clear each node's event log (operator)", vec![range(), q("count", "entries to return (1-4096, default 20)", false)], Some(body(r("NodeNames"))), ok("200", "per-node log as read before clearing, or error", per_node(r("EventLog")))),
        },
        "/v1/nodes/beacon": {"put": op("the identify LED (operator)", vec![q("target", "on, off, blink", true), range()], Some(body(r("NodeNames"))), ok("202", "per-node on / off / blink or error", results.clone()))},
        "/v1/nodes/health": {"get": op("ok / warning / critical per node from its sensors and the last day's events; recorded (GET /v1/nodes?health=)", vec![range()], Some(body(r("NodeNames"))), ok("200", "per-node verdict or error", per_node(r("HealthReport"))))},
    });
    let inspect_schemas = json!({
            "Inventory": {"type": "object", "description": "sections of name -> value; parts the BMC cannot tell are absent or in notes", "properties": {
                "bmc": {"type": "object"}, "system": {"type": "object"}, "board": {"type": "object"}, "chassis": {"type": "object"},
                "processors": {"type": "array", "items": {"type": "object"}}, "memory": {"type": "array", "items": {"type": "object"}},
                "storage": {"type": "array", "items": {"type": "object"}}, "firmware": {"type": "object"},
                "macs": {"type": "array", "items": {"type": "string"}},
                "nics": {"type": "object", "properties": {"missing": {"type": "array", "items": {"type": "string"}}, "unknown": {"type": "array", "items": {"type": "string"}}}},
                "notes": {"type": "array", "items": {"type": "string"}},
                "read_at": {"type": "string", "format": "date-time"}}},
            "Reading": {"type": "object", "required": ["name", "kind", "status"], "properties": {
                "name": {"type": "string"}, "kind": {"enum": ["temp", "fan", "voltage", "power", "other"]},
                "value": {"type": "number"}, "unit": {"type": "string"}, "state": {"type": "string", "description": "discrete sensors: the asserted state bits"},
                "status": {"enum": ["ok", "warning", "critical", "na"]}}},
            "EventLog": {"type": "object", "properties": {
                "total": {"type": "integer"}, "cleared": {"type": "boolean"},
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "time": {"type": "integer", "description": "Unix seconds"},
                    "source": {"type": "string"}, "message": {"type": "string"},
                    "severity": {"enum": ["ok", "warning", "critical"]}, "asserted": {"type": "boolean"}}}}}},
            "HealthReport": {"type": "object", "properties": {
                "health": {"enum": ["ok", "warning", "critical"]}, "reasons": {"type": "array", "items": {"type": "string"}}}},
    });
    let (networks, network) = single("Network", "name", "networks");
    let (passwds, passwd) = single("Passwd", "key", "passwds");
    let (groups, group) = single("Group", "name", "groups");
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "xcat3 API", "version": "1.1",
                 "description": "Wire-compatible with xcat3 v1. Multi-node requests take {\"nodes\":[{\"name\":..}]} (also on GET) or ?noderange=, and answer one result per node."},
        "paths": {
            "/": {"get": op("API versions", vec![], None, json!({"200": {"description": "versions"}}))},
            "/v1": {"get": op("v1 links", vec![], None, json!({"200": {"description": "links"}}))},
            "/v1/openapi.json": {"get": op("this document", vec![], None, json!({"200": {"description": "OpenAPI"}}))},
            "/v1/nodes": {
                "get": op("list node names", vec![range(), q("state", "only nodes in this provisioning state: available, dhcp, deploying, deployed, deploy failed", false), q("power_state", "only nodes whose last known power state is this: on, off, unknown (kept by actions and the periodic sync)", false), q("health", "only nodes whose last health verdict is this: ok, warning, critical, unknown", false)], None, ok("200", "names", json!({"type": "object", "properties": {"nodes": {"type": "array", "items": {"type": "string"}}, "missing": {"type": "string"}}}))),
                "post": op("create nodes (bulk)", vec![], Some(body(json!({"type": "object", "required": ["nodes"], "properties": {"nodes": {"type": "array", "items": r("Node")}}}))), ok("201", "per-node ok or error", results.clone())),
                "patch": op("update nodes (bulk) with JSON patch", vec![range()], Some(body(json!({"type": "object", "required": ["patches"], "properties": {"nodes": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}, "patches": r("Patches")}}))), ok("200", "per-node updated or error", results.clone())),
                "delete": op("delete nodes (bulk)", vec![range()], Some(body(r("NodeNames"))), ok("202", "per-node deleted or error", results.clone())),
            },
            "/v1/nodes/info": {"get": op("show nodes (bulk)", vec![range(), fields()], Some(body(r("NodeNames"))), ok("200", "nodes", json!({"type": "object", "properties": {"nodes": {"type": "array", "items": r("Node")}, "missing": {"type": "string"}}})))},
            "/v1/nodes/{name}": {"get": op("show a node", vec![p("name"), fields()], None, ok("200", "node", r("Node")))},
            "/v1/nodes/export": {"get": op("each node's own writable fields and the groups they list, secrets in clear, for a backup (admin only; recorded in the request history)", vec![range()], Some(body(r("NodeNames"))), ok("200", "nodes", json!({"type": "object", "properties": {"nodes": {"type": "array", "items": r("Node")}, "groups": {"type": "array", "items": r("Group")}, "missing": {"type": "string"}}})))},
            "/v1/groups": groups,
            "/v1/groups/{name}": group,
            "/v1/nodes/power": {
                "get": op("power state of nodes", vec![range()], Some(body(r("NodeNames"))), ok("200", "per-node on / off or error; ndjson batches with Accept: application/x-ndjson", results.clone())),
                "put": op("change power", vec![q("target", "on, off, soft, reset, cycle, boot", true), range()], Some(body(r("NodeNames"))), ok("202", "per-node ok or error", results.clone())),
            },
            "/v1/nodes/boot_device": {
                "get": op("next boot device of nodes", vec![range()], Some(body(r("NodeNames"))), ok("200", "per-node net / disk / cdrom / bios or error", results.clone())),
                "put": op("set the next boot device", vec![q("target", "net, disk, cdrom, bios", true), q("persistent", "true: every boot", false), range()], Some(body(r("NodeNames"))), ok("202", "per-node ok or error", results.clone())),
            },
            "/v1/nodes/provision": {
                "put": op("write DHCP reservations and boot files (dhcp), install an OS image (nodeset: install entry, answer file, one-time callback token, next boot from the network; state deploying), or remove them (un_dhcp, un_nodeset; state available)", vec![q("target", "dhcp, nodeset, un_dhcp, un_nodeset", true), q("osimage", "nodeset: the image (default: each node's own)", false), q("subnet", "accepted for v1 clients; each node's network is the one holding its IP", false), range()], Some(body(r("NodeNames"))), ok("202", "per-node ok or an error naming the field", results.clone())),
            },
            "/v1/nodes/provision/callback": {
                "put": op("the installer's last step: deploying -> deployed with the node's one-time token (from its kernel command line and answer file); 401 without a token, 403 for a wrong one, 409 when the node is not deploying (a used token)", vec![q("name", "the node calling back", true)], Some(body(json!({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}))), ok("200", "{\"nodes\": {name: \"deployed\"}}", results.clone())),
            },
            "/v1/nodes/vm": {
                "post": op("mkvm: define KVM guests on hypervisor nodes (type=hypervisor), registering each guest node with a MAC", vec![range()], Some(body(json!({"type": "object", "properties": {
                    "nodes": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                    "hosts": {"type": "string", "description": "noderange of hypervisors; new guests are placed by free memory"},
                    "memory": {"type": "integer", "description": "MiB (default 1024)"},
                    "cpus": {"type": "integer"},
                    "disk": {"type": "string", "description": "new qcow2 disk size, e.g. 20G"},
                    "disk_image": {"type": "string", "description": "backing image path on the hypervisor (qcow2 overlay)"},
                    "network": {"type": "string", "description": "libvirt network NAME or bridge:BRIDGE"},
                    "pool": {"type": "string", "description": "libvirt storage pool (default: default)"},
                    "boot": {"type": "string", "description": "boot order, e.g. network,hd"}}}))),
                    ok("201", "per-guest created / exists or an error; failed guests are left as they were", results.clone())),
                "delete": op("rmvm: undefine KVM guests (stopping them)", vec![q("purge", "true: delete their disks too", false), range()], Some(body(r("NodeNames"))), ok("202", "per-guest removed / absent or an error", results.clone())),
            },
            "/v1/nodes/vm/clone": {
                "post": op("clonevm: linked clones of a shut-off KVM guest on its hypervisor, registered as guest nodes with MACs", vec![range()], Some(body(json!({"type": "object", "required": ["source"], "properties": {
                    "nodes": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                    "source": {"type": "string", "description": "the guest node to copy"}}}))),
                    ok("201", "per-clone created / exists or an error", results.clone())),
            },
            "/v1/ring": {"get": op("owning conductor of each node", vec![range()], Some(body(r("NodeNames"))), ok("200", "{nodes: {name: conductor}}", json!({"type": "object"})))},
            "/v1/nics": {
                "get": op("list nics", vec![], None, ok("200", "uuid and mac of every nic", json!({"type": "object"}))),
                "post": op("create a nic", vec![], Some(body(r("Nic"))), ok("201", "{mac: ok}", json!({"type": "object"}))),
            },
            "/v1/nics/address": {"get": op("find a nic by MAC", vec![q("mac", "MAC address", true), fields()], None, ok("200", "nic", r("Nic")))},
            "/v1/nics/node": {"get": op("nics of a node", vec![q("node_name", "node", true), fields()], None, ok("200", "nics", json!({"type": "object"})))},
            "/v1/nics/{uuid}": {
                "get": op("show a nic", vec![p("uuid"), fields()], None, ok("200", "nic", r("Nic"))),
                "patch": op("update a nic", vec![p("uuid")], Some(body(r("Patches"))), ok("200", "nic", r("Nic"))),
                "delete": op("delete a nic", vec![p("uuid")], None, json!({"202": {"description": "deleted"}})),
            },
            "/v1/networks": networks,
            "/v1/networks/{name}": network,
            "/v1/passwds": passwds,
            "/v1/passwds/get_by_id": {"get": op("show a passwd by id", vec![q("id", "id", true), fields()], None, ok("200", "passwd", r("Passwd")))},
            "/v1/passwds/{key}": passwd,
            "/v1/osimages": {
                "get": op("list images", vec![fields()], None, ok("200", "images", json!({"type": "object", "properties": {"images": {"type": "array", "items": r("OsImage")}}}))),
                "post": op("copycds: import an OS install ISO (the request body, application/octet-stream); Ubuntu, Debian, RHEL, Rocky, Alma, CentOS are recognized and unpacked under /install/NAME/ without mounting", vec![q("filename", "the ISO's file name (recorded as orig_name)", false), q("name", "osimage name (default DISTROVERSION-ARCH)", false)],
                    Some(json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})),
                    ok("201", "the image: name, result (created | exists), distro, ver, arch, flavor, kernel, initrd", json!({"type": "object"}))),
            },
            "/v1/osimages/get_by_id": {"get": op("show an image by id", vec![q("id", "id", true), fields()], None, ok("200", "image", r("OsImage")))},
            "/v1/osimages/{name}": {
                "get": op("show an image", vec![p("name"), fields()], None, ok("200", "image", r("OsImage"))),
                "patch": op("update profile/type/provmethod/rootfstype", vec![p("name")], Some(body(r("Patches"))), ok("200", "image", r("OsImage"))),
                "delete": op("delete an unused image", vec![p("name")], None, json!({"202": {"description": "deleted"}})),
            },
            "/v1/services": {"get": op("list services", vec![], None, ok("200", "services", json!({"type": "object", "properties": {"services": {"type": "array", "items": r("Service")}}})))},
            "/v1/services/hostname": {"get": op("services of a host", vec![q("name", "host name", true)], None, ok("200", "services", json!({"type": "object"})))},
            "/v1/drivers": drivers["/v1/drivers"],
            "/v1/drivers/{name}": drivers["/v1/drivers/{name}"],
            "/v1/requests": requests,
            "/v1/requests/{id}": request,
        },
        "security": [{}, {"bearer": []}],
        "components": {
          "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "with [api] auth = \"token\": a token from `xcat3-api token create`; readers may GET, operators also PUT power/boot_device/provision/beacon and DELETE eventlog, admins everything"}},
          "schemas": {
            "Request": {"type": "object", "properties": {
                "id": {"type": "string"}, "action": {"type": "string", "example": "power on"},
                "requested_by": {"type": ["string", "null"], "description": "the token's name"},
                "nodes": {"type": "integer"}, "failed": {"type": ["integer", "null"], "description": "null while running"},
                "started_at": {"type": "string", "format": "date-time"}, "finished_at": {"type": ["string", "null"], "format": "date-time"}}},
            "Fault": {"type": "object", "properties": {"faultcode": {"type": "string"}, "faultstring": {"type": "string"}, "debuginfo": {}}},
            "NodeNames": {"type": "object", "properties": {"nodes": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
            "NodeResults": {"type": "object", "properties": {"nodes": {"type": "object", "additionalProperties": {"type": "string", "description": "ok / updated / deleted, or an error naming the field"}},
                "error_kinds": {"type": "object", "description": "action results streamed as application/x-ndjson only, when some node failed: node -> kind (a plain JSON reply is exactly v1's)", "additionalProperties": r("ErrorKind")}}},
            "ErrorKind": {"enum": ["unreachable", "authentication", "unsupported", "timeout", "invalid", "bmc_error", "locked", "not_found", "internal"]},
            "Driver": {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                "interfaces": {"type": "object", "description": "power, management, console, inspect, vm: null when not offered", "additionalProperties": {"type": ["object", "null"], "properties": {
                    "driver": {"type": "string"},
                    "properties": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "required": {"type": "boolean"}, "one_of": {"type": "string"}, "description": {"type": "string"}, "secret": {"type": "boolean"}}}}}}}}},
            "Patches": {"type": "array", "items": {"type": "object", "required": ["op", "path"], "properties": {"op": {"enum": ["add", "replace", "remove"]}, "path": {"type": "string", "example": "/control_info/bmc_address"}, "value": {}}}},
            "Node": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "description": "DNS host name; not info/power/provision/boot_device/callback"},
                "mgt": {"enum": ["ipmi", "kvm", "redfish", "fake"]},
                "netboot": {"enum": ["pxe", "ipxe", "grub2", "petitboot"]},
                "arch": {"enum": ["x86_64", "ppc64le", "aarch64"]},
                "type": {"type": "string"},
                "control_info": {"type": "object", "description": "driver settings; secrets (*password*, *token*, key_contents) are write-only and shown as ******"},
                "console_info": {"type": "object"},
                "nics_info": {"type": "object", "properties": {"nics": {"type": "array", "items": r("Nic")}}},
                "state": {"type": "string", "readOnly": true},
                "power_state": {"type": "string", "readOnly": true},
                "reservation": {"type": "string", "readOnly": true},
                "conductor": {"type": "string", "readOnly": true},
                "osimage": {"type": "string", "readOnly": true},
                "groups": {"type": "array", "items": {"type": "string"}, "description": "groups the node inherits from, first one first (also accepted as \"a,b\")"},
                "inherited": {"type": "object", "readOnly": true, "description": "field or control_info.KEY -> the group its value came from", "additionalProperties": {"type": "string"}}}},
            "Group": {"type": "object", "required": ["name"], "description": "attributes member nodes inherit where they set none", "properties": {
                "name": {"type": "string"},
                "mgt": {"enum": ["ipmi", "kvm", "redfish", "fake"]},
                "netboot": {"enum": ["pxe", "ipxe", "grub2", "petitboot"]},
                "arch": {"enum": ["x86_64", "ppc64le", "aarch64"]},
                "type": {"type": "string"},
                "control_info": {"type": "object"},
                "console_info": {"type": "object"},
                "members": {"type": "string", "readOnly": true, "description": "member nodes as a noderange"}}},
            "Nic": {"type": "object", "required": ["mac"], "properties": {
                "uuid": {"type": "string", "format": "uuid"}, "mac": {"type": "string", "description": "normalized to aa:bb:cc:dd:ee:ff"},
                "name": {"type": "string"}, "ip": {"type": "string"}, "netmask": {"type": "string"},
                "primary": {"type": "boolean"}, "extra": {"type": "object"}, "node": {"type": "string"}}},
            "Network": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "subnet": {"type": "string"}, "netmask": {"type": "string"},
                "gateway": {"type": "string"}, "nameservers": {"type": "string"}, "ntpservers": {"type": "string"},
                "domain": {"type": "string"}, "dynamic_range": {"type": "string", "example": "10.0.0.100-10.0.0.200"},
                "next_server": {"type": "string"}, "extra": {"type": "object"}}},
            "Passwd": {"type": "object", "required": ["key"], "properties": {
                "key": {"type": "string"}, "username": {"type": "string"},
                "password": {"type": "string", "description": "write-only; replies show ******"},
                "crypt_method": {"enum": ["md5", "sha256", "sha512"]}}},
            "OsImage": {"type": "object", "properties": {
                "name": {"type": "string"}, "arch": {"type": "string"}, "ver": {"type": "string"}, "distro": {"type": "string"},
                "profile": {"type": "string"}, "type": {"type": "string"}, "provmethod": {"type": "string"}, "rootfstype": {"type": "string"}, "orig_name": {"type": "string"}}},
            "Service": {"type": "object", "properties": {
                "hostname": {"type": "string"}, "type": {"type": "string"}, "online": {"type": "boolean"}, "workers": {"type": ["integer", "null"]}}},
        }},
    });
    // Added apart: one json! this large overflows the macro's recursion.
    if let Some(node) = doc.pointer_mut("/components/schemas/Node/properties") {
        node["health"] = json!({"type": ["string", "null"], "readOnly": true, "description": "the last health verdict"});
        node["inventory"] = json!({"type": "object", "readOnly": true, "description": "only with fields=inventory: the stored inventory"});
    }
    for (at, more) in [
        ("/paths", inspect),
        ("/components/schemas", inspect_schemas),
    ] {
        if let (Some(all), Value::Object(more)) =
            (doc.pointer_mut(at).and_then(Value::as_object_mut), more)
        {
            all.extend(more);
        }
    }
    doc
}
