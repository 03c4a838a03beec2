#!/usr/bin/env python3
"""Writes rules/pipelines/windows-evtx.yml and ecs-windows.yml from SigmaHQ's tests/thor.yml.

thor.yml is SigmaHQ's own logsource -> event mapping for Windows event logs (Detection Rule
License 1.1, see ../shared/corpora/sigma/LICENSE). Both pipelines share its logsource
conditions (written with Sigma's own `Channel`/`EventID` names) and differ only in where
they find fields. Run from the repository root:
    python3 scripts/gen-windows-pipelines.py ../shared/corpora/sigma/tests/thor.yml
"""
import sys
import yaml

thor = yaml.safe_load(open(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora/sigma/tests/thor.yml"))
ls = thor["logsources"]

# service -> channels
channels = {}
for v in ls.values():
    if v.get("product") == "windows" and "service" in v and "sources" in v:
        channels[v["service"]] = [s.split(":", 1)[1] for s in v["sources"] if s.startswith("WinEventLog:")]

# (category, product) -> list of alternatives (each a condition map) and field mappings
cats = {}
catmaps = {}
for v in ls.values():
    if "category" not in v or "conditions" not in v:
        continue
    key = (v["category"], v.get("product"))
    cond = dict(v["conditions"])
    svc = v.get("rewrite", {}).get("service")
    chans = channels.get(svc, [])
    if chans:
        cond = {"Channel": chans if len(chans) > 1 else chans[0], **cond}
    cats.setdefault(key, []).append(cond)
    for sigma, target in (v.get("fieldmappings") or {}).items():
        catmaps.setdefault(key, {}).setdefault(sigma, []).append(target)

# Microsoft Defender renders several EventData names with spaces.
DEFENDER = {"ThreatName": ["Threat Name"], "SourceName": ["Source Name"], "ProcessName": ["Process Name"],
            "NewValue": ["New Value"], "OldValue": ["Old Value"], "DetectionUser": ["Detection User"]}

SYSTEM = ["EventID", "Channel", "Computer", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Version"]


class Flow(list):
    pass


def flow(dumper, data):
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # Rampart's YAML reader refuses anchors and aliases
        return True


Dumper.add_representer(Flow, flow)


def build(name, description, priority, system, provider, data_prefixes, header):
    t = []
    logsource_ids = []
    windows_or_av = [{"type": "logsource", "product": "windows"}, {"type": "logsource", "category": "antivirus"}]
    for (cat, prod), alts in sorted(cats.items(), key=lambda kv: kv[0][0]):
        rc = {"type": "logsource", "category": cat}
        if prod:
            rc["product"] = prod
        conds = alts[0] if len(alts) == 1 else alts
        logsource_ids.append(f"logsource_{cat}")
        t.append({"id": f"logsource_{cat}", "type": "add_condition", "conditions": conds, "rule_conditions": [rc]})
    for svc, chans in sorted(channels.items()):
        if not chans:
            continue
        logsource_ids.append(f"logsource_service_{svc}")
        t.append({"id": f"logsource_service_{svc}", "type": "add_condition",
                  "conditions": {"Channel": chans if len(chans) > 1 else chans[0]},
                  "rule_conditions": [{"type": "logsource", "product": "windows", "service": svc}]})
    # A rule whose logsource none of the above maps and that is not a Windows rule (Linux,
    # macOS, cloud, network, web: SigmaHQ keeps them all in one tree) gets no Channel/EventID
    # condition; without this item it would be evaluated against, and could match, every
    # Windows event. It applies only to events that have no Windows channel. The path is
    # written as it ends up: the renames below apply to Windows rules only.
    t.append({"id": "other_logsources", "type": "add_condition",
              "conditions": {system("Channel") + "|exists": False},
              "rule_conditions": [{"type": "processing_item_applied", "processing_item_id": i} for i in logsource_ids] + windows_or_av,
              "rule_cond_op": "or", "rule_cond_not": True})
    mapping_ids = []
    for (cat, prod), m in sorted(catmaps.items()):
        extra = DEFENDER if cat == "antivirus" else {}
        mp = {}
        for sigma, targets in m.items():
            names = [sigma] + targets
            for tname in targets:
                names += extra.get(tname, [])
            mp[sigma] = Flow([data_prefixes[0] + n for n in dict.fromkeys(names)])
        iid = f"fields_{cat}"
        mapping_ids.append(iid)
        rc = {"type": "logsource", "category": cat}
        if prod:
            rc["product"] = prod
        t.append({"id": iid, "type": "field_name_mapping", "mapping": mp, "rule_conditions": [rc]})
    mapping_ids.append("fields_windefend")
    t.append({"id": "fields_windefend", "type": "field_name_mapping",
              "mapping": {k: Flow([data_prefixes[0] + x for x in [k] + v]) for k, v in DEFENDER.items()},
              "rule_conditions": [{"type": "logsource", "product": "windows", "service": "windefend"},
                                  {"type": "logsource", "category": "antivirus"}],
              "rule_cond_op": "or"})
    mapping_ids.append("fields_system")
    sysmap = {f: system(f) for f in SYSTEM}
    sysmap["Provider_Name"] = Flow(provider)
    t.append({"id": "fields_system", "type": "field_name_mapping", "mapping": sysmap,
              "rule_conditions": windows_or_av, "rule_cond_op": "or"})
    t.append({"id": "fields_event_data", "type": "field_name_prefix",
              "prefix": data_prefixes[0] if len(data_prefixes) == 1 else Flow(data_prefixes),
              "rule_conditions": windows_or_av, "rule_cond_op": "or",
              "field_name_conditions": [{"type": "processing_item_applied", "processing_item_id": i} for i in mapping_ids],
              "field_name_cond_op": "or", "field_name_cond_not": True})
    doc = {"name": name, "description": description, "priority": priority, "transformations": t}
    body = yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=200, allow_unicode=True)
    return header + body


HEADER = """# Generated by scripts/gen-windows-pipelines.py from SigmaHQ's tests/thor.yml
# (logsource -> Channel/EventID conditions; Detection Rule License 1.1). Edit the script, not this file.
"""

evtx = build(
    "windows-evtx",
    "Windows events rendered from EVTX as JSON ({\"Event\": {\"System\": …, \"EventData\": …}}); SigmaHQ's logsource mapping",
    10,
    lambda f: f"Event.System.{f}",
    ["Event.System.Provider.#attributes.Name", "Event.System.Provider.@Name", "Event.System.Provider_attributes.Name"],
    ["Event.EventData.", "Event.UserData.*."],
    HEADER + "# Sigma field names become Event.EventData.<Field> (else Event.UserData.<any>.<Field>);\n"
    "# EventID, Channel, Computer, … become Event.System.<Field>; Provider_Name the provider's Name attribute.\n",
)
open("rules/pipelines/windows-evtx.yml", "w").write(evtx)

ecs = build(
    "ecs-windows",
    "Winlogbeat/ECS Windows events (winlog.event_data.*, winlog.channel, winlog.event_id); SigmaHQ's logsource mapping",
    10,
    lambda f: {"EventID": "winlog.event_id", "Channel": "winlog.channel", "Computer": "winlog.computer_name",
               "Level": "log.level", "Task": "winlog.task", "Opcode": "winlog.opcode", "Keywords": "winlog.keywords",
               "EventRecordID": "winlog.record_id", "Version": "winlog.version"}[f],
    ["winlog.provider_name"],
    ["winlog.event_data.", "winlog.user_data."],
    HEADER + "# For Winlogbeat output that keeps the raw event data (winlog.event_data.*); ECS fields that a\n"
    "# Winlogbeat module adds (process.executable, …) are not used.\n",
)
open("rules/pipelines/ecs-windows.yml", "w").write(ecs)
