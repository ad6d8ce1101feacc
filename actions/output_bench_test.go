package actions

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nixflow/nixflow/event"
	"github.com/nixflow/nixflow/output"
)

// cpuTime is the process's CPU time so far (user and system, every
// thread: the garbage collector's work included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports bytes per second of CPU time since start: on a
// loaded machine wall time stretches with the load, CPU time much less.
func reportCPU(b *testing.B, start time.Duration, bytes int) {
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

// benchOutput is 1 MiB of typical build log lines.
func benchOutput() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "compiling src/module_%04d/file_%04d.c -> build/obj/file_%04d.o ok\n", i%100, i, i)
	}
	return b.Bytes()
}

func benchMasker(secrets int) *Masker {
	m := NewMasker()
	for i := range secrets {
		m.Add(fmt.Sprintf("s3cr3t-value-%d-xyzzy", i))
	}
	return m
}

// BenchmarkMask masks lines of a build log (no secret in them) with 0, 1,
// 10 and 100 secrets; bytes per second is the throughput.
func BenchmarkMask(b *testing.B) {
	lines := bytes.Split(bytes.TrimSuffix(benchOutput(), []byte("\n")), []byte("\n"))
	strs := make([]string, len(lines))
	total := 0
	for i, l := range lines {
		strs[i] = string(l)
		total += len(l) + 1
	}
	for _, n := range []int{0, 1, 10, 100} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			m := benchMasker(n)
			b.SetBytes(int64(total))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				for _, s := range strs {
					m.Mask(s)
				}
			}
			reportCPU(b, start, total)
		})
	}
}

// BenchmarkLineWriter passes 1 MiB of output, in 64 KiB writes as the
// local executor reads them, through the line writer into the sinks of
// `nixflow run`: a console (each format, to io.Discard) and the job's log
// file; sinks=none measures the line writer and masker alone.
func BenchmarkLineWriter(b *testing.B) {
	out := benchOutput()
	for _, secrets := range []int{0, 10} {
		for _, sinks := range []string{"none", "simple", "structured", "json"} {
			b.Run(fmt.Sprintf("secrets=%d/sinks=%s", secrets, sinks), func(b *testing.B) {
				var sink event.Sink = event.Sinks{}
				var logs *output.JobLogs
				if sinks != "none" {
					var err error
					if logs, err = output.NewJobLogs(filepath.Join(b.TempDir(), "logs")); err != nil {
						b.Fatal(err)
					}
					defer logs.Close()
					sink = event.Sinks{output.NewConsole(io.Discard, output.Format(sinks), false), logs}
				}
				w := &lineWriter{sink: sink, mask: benchMasker(secrets), tail: &tail{}, now: time.Now,
					tmpl: event.Event{Run: "bench", Job: "job", Step: "step", Event: event.Output, Stream: "stdout"}}
				b.SetBytes(int64(len(out)))
				b.ReportAllocs()
				start := cpuTime()
				for b.Loop() {
					for p := out; len(p) > 0; {
						n := min(len(p), 64<<10)
						w.Write(p[:n])
						p = p[n:]
					}
				}
				reportCPU(b, start, len(out))
			})
		}
	}
}

// BenchmarkAnnounce passes on a step's output that announces many values
// with ::add-mask::, each followed by a line that prints one announced
// earlier, as the executor hands it over (LookAhead, then Write, in 64 KiB
// pieces); the time per op is for all the values.
func BenchmarkAnnounce(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		var out bytes.Buffer
		for i := range n {
			fmt.Fprintf(&out, "::add-mask::token-%08d-%x\n", i, i*7919)
			j := i / 2
			fmt.Fprintf(&out, "using token-%08d-%x for request %d\n", j, j*7919, i)
		}
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			b.SetBytes(int64(out.Len()))
			for b.Loop() {
				m := NewMasker()
				w := &lineWriter{sink: event.Sinks{}, mask: m, tail: &tail{}, now: time.Now,
					announce: func(v string) { m.Add(v) },
					tmpl:     event.Event{Run: "bench", Job: "job", Step: "step", Event: event.Output, Stream: "stdout"}}
				for p := out.Bytes(); len(p) > 0; {
					k := min(len(p), 64<<10)
					w.LookAhead(p[:k])
					w.Write(p[:k])
					p = p[k:]
				}
			}
		})
	}
}
