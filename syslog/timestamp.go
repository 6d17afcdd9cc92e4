package syslog

import "time"

// stamp is a timestamp read from a message, before it is placed on the
// time line: a year-less RFC 3164 stamp needs the receive time to get its
// year, and a stamp without an offset needs the sender's zone.
type stamp struct {
	year, month, day  int
	hour, minute, sec int
	nsec              int
	offset            int  // seconds east of UTC; meaningful when hasOffset
	hasOffset         bool // numeric offset or Z: the zone is known
	utc               bool // a UTC/GMT abbreviation followed the time
	yearless          bool // RFC 3164 "Mmm dd hh:mm:ss": the year is chosen later
	unsynced          bool // Cisco '*': the device says its clock is not set
}

// Unix nanoseconds cover years 1678 to 2262; a stamp outside the years
// below is treated as having no usable time rather than wrapped.
const (
	minYear = 1678
	maxYear = 2261
)

const nsPerDay = 86400 * int64(time.Second)

func isDigit(c byte) bool { return c-'0' <= 9 }

// num2 reads two decimal digits at b[i:]; ok is false when either is not a
// digit or b is too short.
func num2(b []byte, i int) (int, bool) {
	if i+1 >= len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) {
		return 0, false
	}
	return int(b[i]-'0')*10 + int(b[i+1]-'0'), true
}

// num4 reads four decimal digits at b[i:].
func num4(b []byte, i int) (int, bool) {
	hi, ok1 := num2(b, i)
	lo, ok2 := num2(b, i+2)
	return hi*100 + lo, ok1 && ok2
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the number of days of month m (1-12) in year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar. It is the usual era-based conversion
// (400-year eras of 146097 days, years starting in March so that the leap
// day is last); it avoids time.Date, which costs a zone lookup, on the hot
// path of stamps whose offset is known.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400 // [0, 399]
	mp := m + 9        // March = 0
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// valid reports whether the date and clock exist (the day exists in that
// month of that year); year must be set.
func (s *stamp) valid() bool {
	return s.year >= minYear && s.year <= maxYear && s.month >= 1 && s.month <= 12 &&
		s.day >= 1 && s.day <= daysIn(s.year, s.month) &&
		s.hour <= 23 && s.minute <= 59 && s.sec <= 59
}

// unixNano places s on the time line: with its own offset when it has one,
// else in loc. ok is false when the date does not exist or is out of range.
func (s *stamp) unixNano(loc *time.Location) (int64, bool) {
	if !s.valid() {
		return 0, false
	}
	if s.hasOffset || s.utc || loc == time.UTC {
		off := 0
		if s.hasOffset {
			off = s.offset
		}
		secs := daysFromCivil(s.year, s.month, s.day)*86400 +
			int64(s.hour*3600+s.minute*60+s.sec-off)
		return secs*int64(time.Second) + int64(s.nsec), true
	}
	// time.Date resolves the zone's rules at that wall time (DST included)
	// and does not allocate.
	t := time.Date(s.year, time.Month(s.month), s.day, s.hour, s.minute, s.sec, s.nsec, loc)
	return t.UnixNano(), true
}

// nearestYear gives a year-less stamp the year that puts it closest to
// recvNs: "Dec 31 23:59:59" received on Jan 1 belongs to the year before,
// "Jan 1 00:00:01" received on Dec 31 (a sender clock slightly ahead) to the
// year after. Feb 29 takes the nearest of those years that has one, or has
// no usable time.
func (s *stamp) nearestYear(loc *time.Location, recvNs int64) (int64, bool) {
	y := time.Unix(0, recvNs).UTC().Year()
	s.year = y
	if t, ok := s.unixNano(loc); ok && absDiff(t, recvNs) <= nsPerDay*182 {
		return t, true
	}
	var best int64
	found := false
	for _, cy := range [3]int{y - 1, y, y + 1} {
		s.year = cy
		t, ok := s.unixNano(loc)
		if ok && (!found || absDiff(t, recvNs) < absDiff(best, recvNs)) {
			best, found = t, true
		}
	}
	return best, found
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// monthOf returns the month (1-12) named by the three letters at b[i:],
// case-insensitive, or 0.
func monthOf(b []byte, i int) int {
	if i+2 >= len(b) {
		return 0
	}
	// Lower-case the three letters and compare them as one number.
	k := uint32(b[i]|0x20)<<16 | uint32(b[i+1]|0x20)<<8 | uint32(b[i+2]|0x20)
	switch k {
	case 'j'<<16 | 'a'<<8 | 'n':
		return 1
	case 'f'<<16 | 'e'<<8 | 'b':
		return 2
	case 'm'<<16 | 'a'<<8 | 'r':
		return 3
	case 'a'<<16 | 'p'<<8 | 'r':
		return 4
	case 'm'<<16 | 'a'<<8 | 'y':
		return 5
	case 'j'<<16 | 'u'<<8 | 'n':
		return 6
	case 'j'<<16 | 'u'<<8 | 'l':
		return 7
	case 'a'<<16 | 'u'<<8 | 'g':
		return 8
	case 's'<<16 | 'e'<<8 | 'p':
		return 9
	case 'o'<<16 | 'c'<<8 | 't':
		return 10
	case 'n'<<16 | 'o'<<8 | 'v':
		return 11
	case 'd'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

// dig2 reads the two decimal digits a and b.
func dig2(a, b byte) (int, bool) {
	x, y := a-'0', b-'0'
	return int(x)*10 + int(y), x <= 9 && y <= 9
}

// parseClock reads "hh:mm:ss" and an optional fraction ".d…" at b[i:] into
// s and returns the index after it. Fraction digits past the ninth are read
// and ignored (nanosecond resolution).
func parseClock(b []byte, i int, s *stamp) (int, bool) {
	if len(b)-i < 8 {
		return i, false
	}
	d := b[i : i+8 : i+8]
	h, ok1 := dig2(d[0], d[1])
	m, ok2 := dig2(d[3], d[4])
	sec, ok3 := dig2(d[6], d[7])
	if !ok1 || !ok2 || !ok3 || d[2] != ':' || d[5] != ':' || h > 23 || m > 59 || sec > 59 {
		return i, false
	}
	s.hour, s.minute, s.sec = h, m, sec
	i += 8
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		ns, scale := 0, 100000000
		for i < len(b) && isDigit(b[i]) {
			ns += int(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return i, false
		}
		s.nsec = ns
	}
	return i, true
}

// parseISO reads an RFC 3339 timestamp "yyyy-mm-ddThh:mm:ss[.frac](Z|±hh:mm)"
// at b[i:] and returns the index after it. Strict (RFC 5424) requires the
// offset and the 'T' (either case), and lets the caller check what follows.
// Lenient (a timestamp in RFC 3164 position) also accepts a space for 'T',
// offsets "±hhmm" and "±hh", and no offset at all (the sender's zone
// applies).
func parseISO(b []byte, i int, lenient bool, s *stamp) (int, bool) {
	if len(b)-i < 19 {
		return i, false
	}
	d := b[i : i+11 : i+11]
	y1, ok1 := dig2(d[0], d[1])
	y2, ok2 := dig2(d[2], d[3])
	mo, ok3 := dig2(d[5], d[6])
	dd, ok4 := dig2(d[8], d[9])
	if !ok1 || !ok2 || !ok3 || !ok4 || d[4] != '-' || d[7] != '-' {
		return i, false
	}
	switch d[10] {
	case 'T', 't':
	case ' ':
		if !lenient {
			return i, false
		}
	default:
		return i, false
	}
	y := y1*100 + y2
	s.year, s.month, s.day = y, mo, dd
	if mo < 1 || mo > 12 || dd < 1 || dd > daysIn(y, mo) {
		return i, false
	}
	j, ok := parseClock(b, i+11, s)
	if !ok {
		return i, false
	}
	if j >= len(b) {
		return j, lenient
	}
	switch c := b[j]; c {
	case 'Z', 'z':
		s.hasOffset, s.offset = true, 0
		return j + 1, true
	case '+', '-':
		oh, okh := num2(b, j+1)
		if !okh || oh > 23 {
			return i, false
		}
		k := j + 3
		om := 0
		switch {
		case k+2 < len(b) && b[k] == ':' && isDigit(b[k+1]):
			m, okm := num2(b, k+1)
			if !okm {
				return i, false
			}
			om, k = m, k+3
		case lenient && k < len(b) && isDigit(b[k]):
			m, okm := num2(b, k)
			if !okm {
				return i, false
			}
			om, k = m, k+2
		case !lenient:
			return i, false
		}
		if om > 59 {
			return i, false
		}
		s.offset = oh*3600 + om*60
		if c == '-' {
			s.offset = -s.offset
		}
		s.hasOffset = true
		return k, true
	}
	return j, lenient
}
