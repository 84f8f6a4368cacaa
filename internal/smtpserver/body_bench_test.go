package smtpserver

import (
	"bufio"
	"strings"
	"testing"
)

// BenchmarkReadData measures DATA's reader and content rules on a 10 KiB
// message (the MX benchmark's size) and a 1 MiB one, in octets per second.
func BenchmarkReadData(b *testing.B) {
	for _, size := range []int{10 << 10, 1 << 20} {
		line := "0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n"
		msg := "From: a@b.test\r\nSubject: x\r\n\r\n" + strings.Repeat(line, size/len(line)) + ".\r\n"
		b.Run(map[int]string{10 << 10: "10KiB", 1 << 20: "1MiB"}[size], func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			r := strings.NewReader(msg)
			br := bufio.NewReaderSize(r, 16<<10)
			for b.Loop() {
				r.Reset(msg)
				br.Reset(r)
				w := &bodyWriter{maxSize: 32 << 20, maxLine: DefaultMaxDataLine, maxHeader: DefaultMaxHeaderBytes, maxFields: DefaultMaxHeaderFields, lineStart: true}
				if err := readData(br, w, func() {}); err != nil {
					b.Fatal(err)
				}
				if _, v := w.end(); v != nil {
					b.Fatal(v)
				}
			}
		})
	}
}
