// imapflow against Postern's IMAP port with CONDSTORE and QRESYNC, for
// test/e2e/imap_condstore_test.go. One argument, JSON:
//
//   {host, port, user, pass, mode, uidValidity, highestModseq}
//
// mode "snapshot": opens INBOX and prints what a syncing client keeps:
//   {enabled, uidValidity, highestModseq, messages: [{uid, flags, modseq}]}
// mode "resync": opens INBOX with QRESYNC from uidValidity/highestModseq and
//   prints what the server said changed, then the same by UID FETCH
//   (CHANGEDSINCE … VANISHED), the flags after conditional STOREs, and the
//   VANISHED a second session's expunge brings to a NOOP:
//   {enabled, highestModseq, selectFlags, selectVanished, fetched,
//    fetchVanished, afterStore, liveVanished}
// BigInts (mod-sequences) are printed as strings.
import { ImapFlow } from 'imapflow';

const cfg = JSON.parse(process.argv[2]);

function client(qresync) {
    return new ImapFlow({
        host: cfg.host,
        port: cfg.port,
        secure: false,
        auth: { user: cfg.user, pass: cfg.pass },
        tls: { rejectUnauthorized: false },
        qresync,
        logger: false
    });
}

const str = v => (typeof v === 'bigint' ? v.toString() : v);
const sorted = flags => [...(flags || [])].sort();

async function snapshot() {
    const c = client(true);
    await c.connect();
    const mb = await c.mailboxOpen('INBOX');
    const messages = [];
    for await (const m of c.fetch('1:*', { uid: true, flags: true })) {
        messages.push({ uid: m.uid, flags: sorted(m.flags), modseq: str(m.modseq) });
    }
    const out = { enabled: [...c.enabled].sort(), uidValidity: str(mb.uidValidity), highestModseq: str(mb.highestModseq), messages };
    await c.logout();
    return out;
}

async function resync() {
    const c = client(true);
    const events = [];
    c.on('flags', e => events.push({ kind: 'flags', uid: e.uid, flags: sorted(e.flags), modseq: str(e.modseq) }));
    c.on('expunge', e => events.push({ kind: 'expunge', uid: e.uid, vanished: !!e.vanished, earlier: !!e.earlier }));
    await c.connect();
    const since = BigInt(cfg.highestModseq);
    const mb = await c.mailboxOpen('INBOX', { uidValidity: BigInt(cfg.uidValidity), changedSince: since });
    const out = {
        enabled: [...c.enabled].sort(),
        highestModseq: str(mb.highestModseq),
        qresync: !!mb.qresync,
        selectFlags: events.filter(e => e.kind === 'flags'),
        selectVanished: events.filter(e => e.kind === 'expunge')
    };
    events.length = 0;

    out.fetched = [];
    for await (const m of c.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: since })) {
        out.fetched.push({ uid: m.uid, flags: sorted(m.flags), modseq: str(m.modseq) });
    }
    out.fetchVanished = events.filter(e => e.kind === 'expunge');
    events.length = 0;

    // A conditional STORE: stale for a message changed since, fresh for one
    // that was not.
    // imapflow answers true either way (it does not read OK [MODIFIED]):
    // the flags tell.
    await c.messageFlagsAdd(String(cfg.changedUID), ['$Stale'], { uid: true, unchangedSince: since });
    await c.messageFlagsAdd(String(cfg.freshUID), ['$Fresh'], { uid: true, unchangedSince: BigInt(out.highestModseq) });
    out.afterStore = [];
    for await (const m of c.fetch(`${cfg.freshUID},${cfg.changedUID}`, { uid: true, flags: true }, { uid: true })) {
        out.afterStore.push({ uid: m.uid, flags: sorted(m.flags), modseq: str(m.modseq) });
    }
    events.length = 0;

    // A second session expunges the fresh message; the NOOP of the first
    // brings VANISHED.
    const other = client(false);
    await other.connect();
    await other.mailboxOpen('INBOX');
    await other.messageDelete(String(cfg.freshUID), { uid: true });
    await other.logout();
    await c.noop();
    out.liveVanished = events.filter(e => e.kind === 'expunge');
    await c.logout();
    return out;
}

const modes = { snapshot, resync };
try {
    const out = await modes[cfg.mode]();
    process.stdout.write(JSON.stringify(out));
} catch (err) {
    process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
    process.exit(1);
}
