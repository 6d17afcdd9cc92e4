package disk

import (
	"fmt"
	"sync"
	"testing"
)

// benchSpool opens a spool whose retention keeps the disk use of long runs
// bounded (no readers, so retention reads nothing back).
func benchSpool(b *testing.B, pol FsyncPolicy) *Spool {
	b.Helper()
	s, err := Open(Options{Dir: b.TempDir(), Fsync: pol, SegmentSize: 64 << 20, MaxBytes: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func reportFsyncs(b *testing.B, s *Spool) {
	st := s.Stats()
	b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/op")
}

// BenchmarkAppend measures single-goroutine Append throughput per record size
// and fsync policy.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, pol := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
			b.Run(fmt.Sprintf("%dKiB/%v", size>>10, pol), func(b *testing.B) {
				s := benchSpool(b, pol)
				rec := makeRec(1, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := s.Append(rec); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportFsyncs(b, s)
			})
		}
	}
}

// BenchmarkAppendGroupCommit measures FsyncAlways with 4 concurrent appenders
// sharing fsyncs.
func BenchmarkAppendGroupCommit(b *testing.B) {
	const workers = 4
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB/%dgoroutines", size>>10, workers), func(b *testing.B) {
			s := benchSpool(b, FsyncAlways)
			rec := makeRec(1, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				n := b.N / workers
				if w < b.N%workers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if _, err := s.Append(rec); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportFsyncs(b, s)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkReaderNext measures reading back 64 KiB records.
func BenchmarkReaderNext(b *testing.B) {
	const size = 64 << 10
	s := benchSpool(b, FsyncNever)
	rec := makeRec(1, size)
	for i := 0; i < 4096; i++ { // 256 MiB, within retention
		if _, err := s.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	var r *Reader
	for i := 0; i < b.N; i++ {
		if i%4096 == 0 {
			if r != nil {
				r.Close()
				s.DeleteCursor("bench")
			}
			var err error
			if r, err = s.Reader("bench"); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
