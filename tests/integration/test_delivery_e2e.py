"""End to end: two nights from three partners → published → four recipients, by agreement.

Synthetic partner files for two nights go through the real pipeline (GE validation,
pseudonymisation, publishing); then each default agreement is delivered for both nights: the
police and the bus operator by push to their own OpenSSH inboxes, the municipality and the
security company by pull from the hub's chrooted OpenSSH service, fetched with their own keys.
Everything below is checked on what the recipients actually hold, against expectations computed
independently from the hub's published data (SQL written out here, pseudonyms by the
construction the README documents).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.ingest import pipeline
from samverkan.core.contracts import load_contracts
from devkit.embedded import REPO
from samverkan.connectors.sshd import generate_keypair, sshd_available, start_sftp_server
from devkit.leakscan import PersonalValues, scan
from samverkan.core.ledger import Ledger
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.core.settings import Paths
from samverkan.sharing import aggregates, delivery, outbox, retention
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.outbox import MANIFEST, delivery_dir
from samverkan.sharing.pull_service import PullAccount, start_pull_service
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from devkit.synthetic import Population, write_nights
from tests.support.attacker import lp_attack
from tests.support.snapshot import freeze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N1, N2 = date(2026, 11, 20), date(2026, 11, 21)
NIGHTS = (N1, N2)
SIZES = {"police": 300, "transit": 120, "guards": 100}
SEED = 31
HUB_KEY = hashlib.sha256(b"e2e hub key").digest()
SHARING_KEY = hashlib.sha256(b"e2e sharing key").digest()
LINES = ("1", "2", "3", "4", "5", "6", "9", "Flygbuss", "164")

# Each agreement's scope, written out again as SQL over the hub's published incidents.
SCOPE_SQL = {
    "municipality": "source IN ('police', 'transit', 'guards')",
    "police": "source IN ('transit', 'guards')",
    "transit": "source IN ('transit', 'guards') AND (stop_id LIKE 'SE:030:Quay:%' OR line IN ({}) OR area IN ('gustav_iii_torg', 'resecentrum'))".format(
        ", ".join(f"'{l}'" for l in LINES)),
    "guards": "area IN ('gustav_iii_torg', 'resecentrum', 'stortorget', 'prastgatan')",
}
ID_COLUMNS = ("incident_id", "person_pseudonym", "staff_pseudonym")


def documented(recipient: str, value: str | None) -> str | None:
    """The README's construction: base32(HMAC-SHA256(K, "recipient:<id>:epoch<N>" ␟ v)[:16])."""
    if value is None:
        return None
    epoch = load_agreements()[recipient].pseudonym_epoch
    msg = f"recipient:{recipient}:epoch{epoch}".encode() + b"\x1f" + value.encode()
    return base64.b32encode(hmac.new(SHARING_KEY, msg, hashlib.sha256).digest()[:16]).decode().rstrip("=").lower()


# --- the world -------------------------------------------------------------------------------------


class World:
    def __init__(self, root: Path):
        self.root = root
        self.paths = Paths(root / "data").ensure()
        self.received = root / "received"
        self.agreements = load_agreements()
        self.values = PersonalValues()
        self.plans: dict[tuple[str, date], list[str]] = {}

    def ingest(self) -> None:
        from samverkan.quality.validation import Validator

        truths = write_nights(self.root / "partners", list(NIGHTS), SIZES, SEED, population=Population(SEED))
        self.values = PersonalValues().merge(*(t.personal_values for t in truths))
        ledger, validator, hub = Ledger(self.paths.ledger), Validator(), Pseudonymiser(HUB_KEY)
        for truth in truths:
            feed, night = truth.feed, truth.night.isoformat()
            target = self.paths.landing(feed, night) / truth.path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(truth.path, target)
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            entry = ledger.record_landed(feed, target.name, night, target.stat().st_size, 0, sha, "e2e-ingest")
            landed = {"entry_id": entry, "name": target.name, "night": night, "path": str(target), "sha256": sha,
                      "size": target.stat().st_size, "action": "process"}
            result = pipeline.process(load_contracts()[feed], landed, self.paths, ledger, hub, validator,
                                      run_id="e2e-ingest", expectations_dir=REPO / "expectations")
            assert result.status == "published", result.reason

    def deliver_all(self, hub_key: tuple[Path, str]) -> None:
        servers = {}
        try:
            for r, a in self.agreements.items():
                if a.mode == "push":
                    servers[r] = start_sftp_server(self.received / r, hub_key[1], self.root / "sshd" / r)
            for night in NIGHTS:
                for r, a in self.agreements.items():
                    self.plans[(r, night)] = delivery.plan(a, self.paths, night, today=night + timedelta(days=1))
                    for n in self.plans[(r, night)]:
                        self._deliver_one(a, date.fromisoformat(n), servers.get(r), hub_key[0])
        finally:
            for s in servers.values():
                s.stop()

    def _deliver_one(self, agreement, night: date, server, private_key: Path) -> None:
        pseudonyms = RecipientPseudonyms(SHARING_KEY, agreement.id, agreement.pseudonym_epoch)
        if server is None:
            delivery.deliver(agreement, self.paths, night, pseudonyms, f"e2e-{night}")
            return
        settings = SFTPSettings(host=server.host, port=server.port, username=server.username,
                                key_file=str(private_key), host_key=server.host_key_line,
                                path_prefix=server.path_prefix)
        with SFTPConnector(settings) as connector:
            delivery.deliver(agreement, self.paths, night, pseudonyms, f"e2e-{night}", connector=connector)

    def pull_all(self) -> None:
        pulls = [a for a in self.agreements.values() if a.mode == "pull"]
        keys = {a.id: generate_keypair(self.root / "recipient-keys" / a.id) for a in pulls}
        accounts = [PullAccount(a.delivery["account"], a.id, keys[a.id][1]) for a in pulls]
        with start_pull_service(self.root / "data" / "outbox", accounts, self.root / "pull-sshd") as service:
            for a in pulls:
                settings = SFTPSettings(host=service.host, port=service.port, username=a.delivery["account"],
                                        key_file=str(keys[a.id][0]), host_key=service.host_key_line)
                with SFTPConnector(settings) as sftp:
                    for night in sftp.sftp.listdir("/"):
                        for f in sftp.list(f"/{night}"):
                            sftp.download(f"/{night}/{f.name}", self.inbox(a.id) / night / f.name)

    def inbox(self, recipient: str) -> Path:
        """Where the recipient's copies are: its own server's inbox, or what it pulled."""
        if self.agreements[recipient].mode == "push":
            return self.received / recipient / self.agreements[recipient].delivery["directory"].lstrip("/")
        return self.received / recipient / "pulled"

    def received_table(self, recipient: str, dataset: str, night: date | None = None) -> pa.Table:
        nights = [night] if night else NIGHTS
        return pa.concat_tables([pq.read_table(self.inbox(recipient) / n.isoformat() / f"{dataset}.parquet")
                                 for n in nights])

    def hub(self, dataset: str, night: date | None = None) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A DuckDB connection and a subquery over the hub's published dataset (one night or all)."""
        glob = str(self.paths.dataset(dataset) / "**" / "*.parquet")
        con = duckdb.connect()
        return con, f"(SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{'night': VARCHAR}})" \
                    + (f" WHERE night = '{night.isoformat()}')" if night else ")")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    if not sshd_available() or os.geteuid() != 0:
        pytest.skip("needs OpenSSH sshd and root (the pull service chroots recipients)")
    root = tmp_path_factory.mktemp("delivery-e2e")
    w = World(root)
    w.ingest()
    w.deliver_all(generate_keypair(root / "hub-key" / "hub_ed25519"))
    w.pull_all()
    return w


# --- helpers ---------------------------------------------------------------------------------------


def expected_incidents(w: World, recipient: str, night: date) -> list[tuple]:
    columns = load_agreements()[recipient].grant("incidents").columns
    con, hub = w.hub("incidents", night)
    selected = ", ".join(_as_detailed(recipient, c) for c in columns)
    rows = con.execute(f"SELECT {selected} FROM {hub} WHERE {SCOPE_SQL[recipient]}").fetchall()
    return [_rekey_row(recipient, columns, r) for r in rows]


def _as_detailed(recipient: str, column: str) -> str:
    """The agreement's row detail in SQL: times to the start of their slot, coordinates to the cell."""
    detail = load_agreements()[recipient].detail
    assert detail.slot_minutes <= 60  # whole hours: the same on the UTC and the Swedish clock
    if column in ("occurred_at_utc", "occurred_at_local", "reported_at_utc"):
        return f"time_bucket(INTERVAL '{detail.slot_minutes} minutes', {column})"
    if column in ("coord_n", "coord_e"):
        return f"CAST(round({column} / {detail.cell_metres}.0) * {detail.cell_metres} AS INTEGER)"
    return column


def expected_involvements(w: World, recipient: str, night: date) -> list[tuple]:
    columns = load_agreements()[recipient].grant("involvements").columns
    con, people = w.hub("involvements", night)
    _, incidents = w.hub("incidents", night)
    rows = con.execute(f"""SELECT {', '.join('p.' + c for c in columns)} FROM {people} p
                           WHERE p.incident_id IN (SELECT incident_id FROM {incidents} WHERE {SCOPE_SQL[recipient]})
                           AND p.source IN (SELECT unnest(?))""", [list(load_agreements()[recipient].sources)]).fetchall()
    return [_rekey_row(recipient, columns, r) for r in rows]


def _rekey_row(recipient: str, columns: tuple[str, ...], row: tuple) -> tuple:
    return tuple(documented(recipient, v) if c in ID_COLUMNS else v for c, v in zip(columns, row))


def _sortable(rows: list[tuple]) -> list[tuple]:
    return sorted(tuple("" if v is None else str(v) for v in r) for r in rows)


def identifiers(w: World, recipient: str) -> set[str]:
    values = set()
    for night in NIGHTS:
        for f in (w.inbox(recipient) / night.isoformat()).glob("*.parquet"):
            t = pq.read_table(f)
            for c in ID_COLUMNS:
                if c in t.column_names:
                    values |= {v for v in t.column(c).to_pylist() if v}
    return values


# --- what each recipient holds ----------------------------------------------------------------------


def test_each_recipient_holds_exactly_its_datasets_and_columns(world):
    for r, a in world.agreements.items():
        data = [g for g in a.datasets() if not g.report]  # no report was built in this world: none delivered
        assert len(data) < len(a.datasets()), r  # every shipped agreement grants the lägesbild too
        for night in NIGHTS:
            names = set(os.listdir(world.inbox(r) / night.isoformat()))
            assert names == {f"{g.name}.parquet" for g in data} | {MANIFEST, "DATA_DICTIONARY.md",
                                                                   outbox.RECEIPT}, r
            for g in data:
                schema = pq.read_schema(world.inbox(r) / night.isoformat() / f"{g.name}.parquet")
                schema_of = {"observation_counts": aggregates.OBSERVATION_COUNTS_SCHEMA}
                expected = schema_of.get(g.name, aggregates.COUNTS_SCHEMA).names if g.aggregate else list(g.columns)
                assert schema.names == expected, (r, g.name)


@pytest.mark.parametrize("recipient", ["municipality", "police", "transit"])
def test_row_level_recipients_hold_exactly_the_rows_their_agreement_allows(world, recipient):
    for night in NIGHTS:
        incidents = world.received_table(recipient, "incidents", night)
        assert incidents.num_rows > 0
        assert _sortable([tuple(r.values()) for r in incidents.to_pylist()]) == \
            _sortable(expected_incidents(world, recipient, night))
        people = world.received_table(recipient, "involvements", night)
        assert _sortable([tuple(r.values()) for r in people.to_pylist()]) == \
            _sortable(expected_involvements(world, recipient, night))
    police_sources = set(world.received_table("police", "incidents").column("source").to_pylist())
    assert police_sources == {"transit", "guards"}


def test_the_bus_operator_gets_only_incidents_at_its_stops_lines_and_terminals(world):
    t = world.received_table("transit", "incidents").to_pylist()
    assert {r["source"] for r in t} == {"transit", "guards"}  # no police rows: art. 10 data (issue 15)
    for r in t:
        assert (r["stop_id"] or "").startswith("SE:030:Quay:") or r["line"] in LINES or \
            r["area"] in ("gustav_iii_torg", "resecentrum"), r
    con, hub = world.hub("incidents")
    elsewhere = con.execute(f"SELECT count(*) FROM {hub} WHERE source <> 'transit' AND area = 'storsjostrand'").fetchone()[0]
    assert elsewhere > 0  # there was something to leave out


def test_the_security_company_gets_suppressed_counts_that_are_true_and_unrecoverable(world):
    threshold = world.agreements["guards"].grant("incident_counts").threshold
    for night in NIGHTS:
        counts = world.received_table("guards", "incident_counts", night).to_pylist()
        assert any(r["suppressed"] for r in counts) and any(r["incidents"] for r in counts)
        con, hub = world.hub("incidents", night)
        truth = dict(((w, a, c, h), n) for w, a, c, h, n in con.execute(f"""
            SELECT strftime(occurred_at_local, '%G-W%V'), coalesce(area, 'unknown'), category,
                   hour(occurred_at_local), count(*)
            FROM {hub} WHERE {SCOPE_SQL['guards']} AND occurred_at_local IS NOT NULL GROUP BY ALL""").fetchall())
        for r in counts:
            if r["level"] == "cell" and r["incidents"] is not None:
                assert r["incidents"] == truth.get((r["week"], r["area"], r["category"], r["hour_of_day"]), 0)
            assert r["incidents"] is None or r["incidents"] == 0 or r["incidents"] >= threshold
        _attack(counts, truth, threshold)


def _attack(counts: list[dict], truth: dict, threshold: int) -> None:
    """The recipient's best linear attack on each week: no withheld cell pinned or shown small."""
    for (week, row, hour), (lo, hi) in lp_attack(counts).items():
        assert hi - lo >= 1 - 1e-6, (week, row, hour)
        if row is not None and hour is not None and 0 < truth.get((week, *row, hour), 0) < threshold:
            assert hi >= threshold - 1e-6, (week, row, hour)


# --- pseudonyms ------------------------------------------------------------------------------------


def _people_at_police_and_guards(w: World) -> list[str]:
    con, people = w.hub("involvements")
    return [p for (p,) in con.execute(f"""SELECT person_pseudonym FROM {people} WHERE person_pseudonym IS NOT NULL
        GROUP BY 1 HAVING count(DISTINCT source) FILTER (WHERE source IN ('police', 'guards')) = 2""").fetchall()]


def _hub_rows_in_scope(w: World, recipient: str, person: str) -> int:
    con, people = w.hub("involvements")
    _, incidents = w.hub("incidents")
    sources = list(load_agreements()[recipient].sources)
    return con.execute(f"""SELECT count(*) FROM {people} p WHERE p.person_pseudonym = ? AND p.source IN (SELECT unnest(?))
        AND p.incident_id IN (SELECT incident_id FROM {incidents} WHERE {SCOPE_SQL[recipient]})""",
                       [person, sources]).fetchone()[0]


def test_a_person_at_police_and_guards_has_one_pseudonym_per_recipient(world):
    transit_people = world.received_table("transit", "involvements").column("person_pseudonym").to_pylist()
    police_people = world.received_table("police", "involvements").column("person_pseudonym").to_pylist()
    checked = 0
    for person in _people_at_police_and_guards(world):
        at_transit, at_police = _hub_rows_in_scope(world, "transit", person), _hub_rows_in_scope(world, "police", person)
        if not (at_transit and at_police):
            continue
        p_transit, p_police = documented("transit", person), documented("police", person)
        assert p_transit != p_police
        # Every one of the person's rows carries that one pseudonym (no row has another value) ...
        assert transit_people.count(p_transit) == at_transit
        assert police_people.count(p_police) == at_police
        # ... and neither recipient's value appears at the other, nor the hub's anywhere.
        assert p_transit not in police_people and p_police not in transit_people
        assert person not in transit_people and person not in police_people
        checked += 1
    assert checked >= 3


def test_a_regular_keeps_the_same_pseudonym_over_both_nights_at_one_recipient(world):
    # The municipality: the regulars are in the police's rows, which the bus operator no longer gets (issue 15).
    n1 = set(world.received_table("municipality", "involvements", N1).column("person_pseudonym").to_pylist()) - {None}
    n2 = set(world.received_table("municipality", "involvements", N2).column("person_pseudonym").to_pylist()) - {None}
    con, people = world.hub("involvements")
    both = {p for (p,) in con.execute(f"""SELECT person_pseudonym FROM {people} WHERE person_pseudonym IS NOT NULL
                                          GROUP BY 1 HAVING count(DISTINCT night) = 2""").fetchall()}
    expected = {documented("municipality", p) for p in both} & n1 & n2
    assert expected and expected == n1 & n2


def test_two_recipients_files_cannot_be_joined(world):
    con, people = world.hub("involvements")
    shared = _people_at_police_and_guards(world)
    assert shared  # the same people really are in both recipients' data ...
    ids = {r: identifiers(world, r) for r in ("municipality", "police", "transit")}
    for a in ids:
        for b in ids:
            if a < b:
                assert not ids[a] & ids[b], (a, b)  # ... but no identifier value is shared
    hub_values = {v for (v,) in con.execute(f"SELECT DISTINCT person_pseudonym FROM {people}").fetchall() if v}
    assert not hub_values & (ids["municipality"] | ids["police"] | ids["transit"])
    joined = duckdb.connect().execute(
        "SELECT count(*) FROM read_parquet(?) t JOIN read_parquet(?) p USING (person_pseudonym)",
        [[str(world.inbox("transit") / n.isoformat() / "involvements.parquet") for n in NIGHTS],
         [str(world.inbox("police") / n.isoformat() / "involvements.parquet") for n in NIGHTS]]).fetchone()[0]
    assert joined == 0


def test_nothing_personal_reaches_any_recipient(world):
    assert not world.values.is_empty()
    findings = scan([world.received], world.values)
    assert findings == [], [f.kind for f in findings]


# --- register and retention ------------------------------------------------------------------------


def test_plan_delivers_each_night_once(world):
    for r in world.agreements:
        assert world.plans[(r, N1)] == [N1.isoformat()]
        assert world.plans[(r, N2)] == [N2.isoformat()]  # N1 was already delivered as it is
        assert delivery.plan(world.agreements[r], world.paths, N2, today=N2 + timedelta(days=1)) == []


def test_the_register_lists_every_delivery_with_the_received_files_hashes(world):
    register = delivery.register_for(world.paths)
    assert register.verify_chain() >= 8
    con = register.connect()
    events = con.execute("SELECT recipient, delivery_id, agreement_version, run_id FROM disclosures "
                         "WHERE event = 'delivery' ORDER BY ALL").fetchall()
    assert events == sorted((r, n.isoformat(), a.version, f"e2e-{n}") for r, a in world.agreements.items()
                            for n in NIGHTS)
    files = con.execute("SELECT recipient, delivery_id, name, sha256, rows FROM disclosed_files "
                        "WHERE event = 'delivery'").fetchall()
    assert len(files) >= 8 * 3
    for recipient, night, name, sha, rows in files:
        held = world.inbox(recipient) / night / name
        assert hashlib.sha256(held.read_bytes()).hexdigest() == sha, (recipient, night, name)
        if name.endswith(".parquet"):
            assert pq.read_metadata(held).num_rows == rows
    manifests = dict(con.execute("SELECT recipient || '/' || delivery_id, manifest_sha256 FROM disclosures").fetchall())
    for key, sha in manifests.items():
        recipient, night = key.split("/")
        assert hashlib.sha256((world.inbox(recipient) / night / MANIFEST).read_bytes()).hexdigest() == sha


def test_retention_removes_old_deliveries_and_records_it(world, tmp_path):
    """On a copy of the hub's data root, so the other tests see the deliveries whatever the order."""
    paths = freeze(world.paths, tmp_path / "data")
    transit = world.agreements["transit"]
    register = delivery.register_for(paths)
    today = N1 + timedelta(days=transit.retention_days + 1)
    removed = retention.apply_retention(transit, paths, register, today, "e2e-retention")
    assert [r["delivery_id"] for r in removed] == [N1.isoformat()]
    assert not delivery_dir(paths, "transit", N1).exists()
    assert delivery_dir(paths, "transit", N2).exists()
    assert retention.apply_retention(world.agreements["municipality"], paths, register, today, "e2e") == []
    con = register.connect()
    deleted = con.execute("SELECT sha256 FROM disclosed_files WHERE event = 'retention_deletion' "
                          "AND recipient = 'transit' AND delivery_id = ? ORDER BY 1", [N1.isoformat()]).fetchall()
    delivered = con.execute("SELECT sha256 FROM disclosed_files WHERE event = 'delivery' "
                            "AND recipient = 'transit' AND delivery_id = ? ORDER BY 1", [N1.isoformat()]).fetchall()
    assert deleted == delivered and deleted
    reason = con.execute("SELECT reason FROM disclosures WHERE event = 'retention_deletion'").fetchone()[0]
    assert "30 days" in reason
    assert register.verify_chain() >= 9
