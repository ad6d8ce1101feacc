package output

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixflow/nixflow/event"
)

// BenchmarkSinks passes 1 MiB of build log lines, as 64 KiB blocks of
// whole lines (what the line writer hands on), to each sink alone: the
// console in each format (to io.Discard) and the job log file (page
// cache). The events file takes no output lines.
func BenchmarkSinks(b *testing.B) {
	var out bytes.Buffer
	for i := 0; out.Len() < 1<<20; i++ {
		fmt.Fprintf(&out, "compiling src/module_%04d/file_%04d.c -> build/obj/file_%04d.o ok\n", i%100, i, i)
	}
	var blocks [][]byte
	for p := out.Bytes(); len(p) > 0; {
		n := bytes.LastIndexByte(p[:min(len(p), 64<<10)], '\n') + 1
		blocks = append(blocks, p[:n])
		p = p[n:]
	}
	line := &event.Event{Time: time.Now(), Run: "bench", Job: "job", Step: "step", Event: event.Output, Stream: "stdout"}
	for _, sink := range []string{"structured", "simple", "json", "joblog"} {
		b.Run("sink="+sink, func(b *testing.B) {
			var s event.BlockSink
			if sink == "joblog" {
				logs, err := NewJobLogs(filepath.Join(b.TempDir(), "logs"))
				if err != nil {
					b.Fatal(err)
				}
				defer logs.Close()
				s = logs
			} else {
				s = NewConsole(io.Discard, Format(sink), false)
			}
			b.SetBytes(int64(out.Len()))
			b.ReportAllocs()
			for b.Loop() {
				for _, block := range blocks {
					s.EmitOutput(line, block)
				}
			}
		})
	}
}
