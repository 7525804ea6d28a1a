package seed

import (
	"bytes"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
)

// imageSize is the side of a generated product image in pixels.
const imageSize = 256

// shape is the figure on a department's product images.
type shape int

const (
	shapeCircle shape = iota
	shapeRoundedRect
	shapeDiamond
	shapeRing
	shapeBook
	shapeTriangle
	shapeDrop
	shapeStar
)

// productImage draws a PNG for a product: a soft two-tone gradient whose
// hues come from key, the department's figure in the product's colour (or
// one derived from key) with a highlight and a shadow. The same key, figure
// and colour always give the same bytes.
func productImage(key string, sh shape, fill *colour) ([]byte, error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	sum := h.Sum64()
	hue := float64(sum % 360)
	bg1 := hsl(hue, 0.45, 0.90)
	bg2 := hsl(math.Mod(hue+40, 360), 0.50, 0.74)
	fg := hsl(math.Mod(hue+180, 360), 0.55, 0.45)
	if fill != nil {
		fg = rgb{float64(fill.R) / 255, float64(fill.G) / 255, float64(fill.B) / 255}
	}
	stripes := sum>>9&1 == 1
	stripeWidth := 10 + int(sum>>10%12)

	img := image.NewNRGBA(image.Rect(0, 0, imageSize, imageSize))
	const half = imageSize / 2
	px := 1.0 / half // one pixel in the figure's units
	for y := range imageSize {
		for x := range imageSize {
			// Figure coordinates: centre (0, 0), y up, ±1 at the edges.
			u := (float64(x) + 0.5 - half) / half
			v := -(float64(y) + 0.5 - half + 6) / half

			c := mix(bg1, bg2, float64(x+y)/(2*imageSize))
			if stripes && ((x+y)/stripeWidth)%2 == 0 {
				c = c.scale(0.96)
			}
			// A soft shadow under the figure.
			if math.Abs(v+0.62) < 0.1 && math.Abs(u) < 0.56 {
				sd := length(u/0.55, (v+0.62)/0.09) - 1
				c = mix(c, rgb{}, 0.22*clamp(-sd*1.5, 0, 1))
			}
			// Every figure fits in ±0.75.
			if math.Abs(u) > 0.75 || math.Abs(v) > 0.75 {
				img.SetNRGBA(x, y, c.nrgba())
				continue
			}
			d, shade := figure(sh, u, v)
			if cover := clamp(0.5-d/px, 0, 1); cover > 0 {
				f := fg.scale(shade * (1.08 - 0.22*(0.5-v)))
				// A highlight towards the top left.
				f = mix(f, rgb{1, 1, 1}, 0.28*math.Exp(-(sq(u+0.18)+sq(v-0.2))/0.03))
				c = mix(c, f, cover)
			}
			img.SetNRGBA(x, y, c.nrgba())
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// figure returns the signed distance from (u, v) to the figure (negative
// inside) and a shade factor for details such as a book's spine.
func figure(sh shape, u, v float64) (float64, float64) {
	switch sh {
	case shapeRoundedRect:
		return roundedBox(u, v, 0.46, 0.3, 0.12), 1
	case shapeDiamond:
		return (math.Abs(u) + math.Abs(v) - 0.62) * math.Sqrt2 / 2, 1
	case shapeRing:
		return math.Abs(length(u, v)-0.4) - 0.13, 1
	case shapeBook:
		d := roundedBox(u, v, 0.34, 0.46, 0.03)
		if u < -0.24 {
			return d, 0.75
		}
		return d, 1
	case shapeTriangle:
		return triangle(u, v+0.08, 0.62), 1
	case shapeDrop:
		body := roundedBox(u, v+0.12, 0.28, 0.36, 0.1)
		neck := roundedBox(u, v-0.34, 0.1, 0.14, 0.03)
		if neck < body && v > 0.46 {
			return neck, 0.7 // the cap
		}
		return min(body, neck), 1
	case shapeStar:
		return star5(u, v, 0.62, 0.45), 1
	default:
		return length(u, v) - 0.5, 1
	}
}

func roundedBox(u, v, bx, by, r float64) float64 {
	qx, qy := math.Abs(u)-bx+r, math.Abs(v)-by+r
	return length(max(qx, 0), max(qy, 0)) + min(max(qx, qy), 0) - r
}

// triangle is the distance to an equilateral triangle of "radius" r
// pointing up (after Inigo Quilez's 2D distance functions).
func triangle(u, v, r float64) float64 {
	k := math.Sqrt(3)
	u = math.Abs(u) - r
	v = v + r/k
	if u+k*v > 0 {
		u, v = (u-k*v)/2, (-k*u-v)/2
	}
	u -= clamp(u, -2*r, 0)
	return -length(u, v) * sign(v)
}

// star5 is the distance to a five-pointed star of radius r; rf sets how
// deep the points are cut (after Inigo Quilez).
func star5(u, v, r, rf float64) float64 {
	k1x, k1y := 0.809016994375, -0.587785252292
	k2x, k2y := -k1x, k1y
	u = math.Abs(u)
	d := 2 * max(k1x*u+k1y*v, 0)
	u, v = u-d*k1x, v-d*k1y
	d = 2 * max(k2x*u+k2y*v, 0)
	u, v = u-d*k2x, v-d*k2y
	u = math.Abs(u)
	v -= r
	bax, bay := rf*-k1y, rf*k1x-1
	h := clamp((u*bax+v*bay)/(bax*bax+bay*bay), 0, r)
	return length(u-bax*h, v-bay*h) * sign(v*bax-u*bay)
}

type rgb struct{ r, g, b float64 }

func (c rgb) scale(f float64) rgb { return rgb{c.r * f, c.g * f, c.b * f} }

func (c rgb) nrgba() color.NRGBA {
	to8 := func(f float64) uint8 { return uint8(clamp(f, 0, 1)*255 + 0.5) }
	return color.NRGBA{R: to8(c.r), G: to8(c.g), B: to8(c.b), A: 255}
}

func mix(a, b rgb, t float64) rgb {
	return rgb{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t}
}

// hsl converts hue (degrees), saturation and lightness to RGB.
func hsl(h, s, l float64) rgb {
	c := (1 - math.Abs(2*l-1)) * s
	hp := h / 60
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g = c, x
	case hp < 2:
		r, g = x, c
	case hp < 3:
		g, b = c, x
	case hp < 4:
		g, b = x, c
	case hp < 5:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := l - c/2
	return rgb{r + m, g + m, b + m}
}

func clamp(f, lo, hi float64) float64 { return max(lo, min(hi, f)) }

// length is math.Hypot without its overflow care, which these small
// numbers do not need and which costs a third of the drawing time.
func length(x, y float64) float64 { return math.Sqrt(x*x + y*y) }

func sq(f float64) float64 { return f * f }

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
