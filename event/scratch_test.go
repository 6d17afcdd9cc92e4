package event
import ("testing";"unsafe")
func BenchmarkScratchReset(b *testing.B){ var e Event; b.Log(unsafe.Sizeof(e)); for b.Loop(){ e.Reset() } }
func BenchmarkScratchFields(b *testing.B){ buf:=AppendBinary(nil,sampleFlow()); var f field; n:=0; for b.Loop(){ for i:=1;i<len(buf);{ i=readField(buf,i,&f); n++; if f.num==17 { i -= len(f.data)} } }; b.ReportMetric(float64(n)/float64(b.N),"fields/op") }
