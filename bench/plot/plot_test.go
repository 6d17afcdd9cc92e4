package plot

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite draws a chart with two series and a reference line and checks
// the PNG decodes, has the geometry, and shows each series' colour and the
// reference line's.
func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	err := Write(path, Chart{
		Title:  "loss vs offered",
		X:      Axis{Label: "offered msgs/s"},
		Y:      Axis{Label: "loss", Min: 0.01, Max: 100, Ticks: []float64{0.01, 0.1, 1, 10, 100}, Percent: true},
		RefY:   []float64{0.1},
		Series: []Series{{Name: "a", Points: []Point{{100e3, 0}, {200e3, 0.5}, {400e3, 30}}}, {Name: "b", Points: []Point{{100e3, 0}, {200e3, 80}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("size %v", b)
	}
	want := map[[3]uint32]string{}
	for i, name := range []string{"a", "b"} {
		c := Palette[i]
		want[[3]uint32{uint32(c.R), uint32(c.G), uint32(c.B)}] = "series " + name
	}
	want[[3]uint32{uint32(Red.R), uint32(Red.G), uint32(Red.B)}] = "reference line"
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			delete(want, [3]uint32{r >> 8, g >> 8, b >> 8})
		}
	}
	for _, what := range want {
		t.Errorf("%s not drawn", what)
	}
}

func TestHuman(t *testing.T) {
	for v, want := range map[float64]string{1.6e6: "1.6M", 200e3: "200k", 950: "950", 1234567: "1.23M", 999999: "1M", 999400: "999k"} {
		if got := Human(v); got != want {
			t.Errorf("Human(%g) = %q, want %q", v, got, want)
		}
	}
}
