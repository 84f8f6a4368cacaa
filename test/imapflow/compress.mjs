// Drives imapflow against Postern's IMAP port over STARTTLS with
// COMPRESS=DEFLATE: login, LIST, APPEND, FETCH (envelope and source), IDLE
// woken by a second connection's APPEND, then LOGOUT. Prints one JSON object
// with what it saw; test/e2e/imap_compress_test.go checks it.
//
// Usage: node compress.mjs '{"host":..,"port":..,"user":..,"pass":..}'
import { ImapFlow } from 'imapflow';

const cfg = JSON.parse(process.argv[2]);

function client() {
    return new ImapFlow({
        host: cfg.host,
        port: cfg.port,
        secure: false,
        doSTARTTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: cfg.user, pass: cfg.pass },
        logger: false,
    });
}

function message(subject, lines) {
    let body = '';
    for (let i = 0; i < lines; i++) {
        body += `${subject} line ${i}: the quick brown fox jumps over the lazy dog\r\n`;
    }
    return `From: Bob <bob@example.org>\r\nTo: ${cfg.user}\r\nSubject: ${subject}\r\n` +
        `Message-ID: <${subject}@example.org>\r\n\r\n${body}`;
}

const out = {};
const c = client();
await c.connect();
out.compressed = !!c._deflate;
out.secure = !!c.secureConnection;
// imapflow sends ID (RFC 2971) when offered and keeps the server's answer.
out.serverInfo = c.serverInfo;

out.mailboxes = (await c.list()).map((m) => m.path).sort();

const first = message('first', 2000); // about 150 KiB: many deflate blocks
const appended = await c.append('INBOX', first, ['\\Seen']);
out.appendUid = appended.uid;

const lock = await c.getMailboxLock('INBOX');
try {
    const msg = await c.fetchOne(String(appended.uid), { uid: true, envelope: true, source: true, flags: true }, { uid: true });
    out.subject = msg.envelope.subject;
    out.sourceMatches = msg.source.toString() === first;
    out.flags = [...msg.flags];

    // IDLE, woken by an APPEND on another connection.
    const exists = new Promise((resolve) => c.on('exists', (d) => resolve(d.count)));
    const idling = c.idle();
    const other = client();
    await other.connect();
    out.otherCompressed = !!other._deflate;
    await other.append('INBOX', message('second', 10));
    await other.logout();
    out.existsCount = await exists;
    await c.noop(); // ends the IDLE
    await idling;

    const subjects = [];
    for await (const m of c.fetch('1:*', { envelope: true })) {
        subjects.push(m.envelope.subject);
    }
    out.subjects = subjects;
} finally {
    lock.release();
}
await c.logout();
console.log(JSON.stringify(out));
