// Package deliverytest gives tests of mail delivery their peers on
// loopback: the DNS server of internal/dnstest (which can mark answers as
// DNSSEC validated), SMTP servers that record what they receive, a test
// certificate authority, and an HTTPS server for MTA-STS policies.
package deliverytest
