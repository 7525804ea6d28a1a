package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{R: 200, A: 255})
	}
	return img
}

func pngBytes(t testing.TB) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, testImage()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpBytes is the header of a lossy WebP; the service checks formats by
// their magic bytes and never decodes pixels.
func webpBytes() []byte {
	return append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), make([]byte, 24)...)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func requestWithBody(method, path, contentType, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return req
}

// multipartRequest builds an upload with one file field.
func multipartRequest(t testing.TB, path, field, filename string, data []byte) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("caption", "ignored")
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

// blobFiles counts the files in the image folder.
func blobFiles(t testing.TB, ts *testService) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(ts.env.DataDir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestImages(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	cat := ts.category("things", "", 0)
	p := ts.product(sellerA, "Pictured", cat.ID, StatusActive)
	path := "/api/v1/products/" + p.ID + "/images"

	pngData := pngBytes(t)
	sum := sha256.Sum256(pngData)
	wantURL := "/api/v1/images/" + hex.EncodeToString(sum[:]) + ".png"

	t.Run("upload appends the image", func(t *testing.T) {
		var out struct {
			URL     string
			Product Product
		}
		res := ts.send(multipartRequest(t, path, "image", "photo.png", pngData), sellerA).must(t, http.StatusCreated)
		res.json(t, &out)
		if out.URL != wantURL || res.Header.Get("Location") != wantURL || len(out.Product.Images) != 1 || out.Product.Images[0] != wantURL {
			t.Fatalf("upload %+v", out)
		}
		if ev := lastEvent(t, ts.db, "product.updated"); len(ev.Product.GetImageUrls()) != 1 {
			t.Fatalf("event %v", ev.Product)
		}
	})

	t.Run("the same image twice is stored once", func(t *testing.T) {
		n, files := len(outbox(t, ts.db)), blobFiles(t, ts)
		var out struct{ Product Product }
		ts.send(multipartRequest(t, path, "image", "again.png", pngData), sellerA).must(t, http.StatusCreated).json(t, &out)
		if len(out.Product.Images) != 1 || len(outbox(t, ts.db)) != n || blobFiles(t, ts) != files {
			t.Fatalf("duplicate upload changed something: %v", out.Product.Images)
		}
	})

	t.Run("served immutable with an etag", func(t *testing.T) {
		res := ts.do("GET", wantURL, anon, nil).must(t, http.StatusOK)
		h := res.Header
		if h.Get("Content-Type") != "image/png" || h.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			h.Get("ETag") == "" || h.Get("X-Content-Type-Options") != "nosniff" || !bytes.Equal(res.Body, pngData) {
			t.Fatalf("headers %v, %d bytes", h, len(res.Body))
		}
		req := httptest.NewRequest("GET", wantURL, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		if res := ts.send(req, anon); res.Status != http.StatusNotModified || len(res.Body) != 0 {
			t.Fatalf("conditional get: %d", res.Status)
		}
	})

	for _, f := range []struct {
		name, ext string
		data      []byte
	}{{"jpeg", "jpg", jpegBytes(t)}, {"webp", "webp", webpBytes()}} {
		t.Run("accepts "+f.name, func(t *testing.T) {
			var out struct{ URL string }
			ts.send(multipartRequest(t, path, "image", "x", f.data), sellerA).must(t, http.StatusCreated).json(t, &out)
			if !strings.HasSuffix(out.URL, "."+f.ext) {
				t.Fatalf("url %s", out.URL)
			}
			if ct := ts.do("GET", out.URL, anon, nil).must(t, http.StatusOK).Header.Get("Content-Type"); ct != "image/"+map[string]string{"jpg": "jpeg", "webp": "webp"}[f.ext] {
				t.Fatalf("content type %s", ct)
			}
		})
	}

	t.Run("unknown images are 404", func(t *testing.T) {
		for _, key := range []string{strings.Repeat("0", 64) + ".png", "x.png.png", "x.png", strings.Repeat("0", 64) + ".gif"} {
			ts.do("GET", "/api/v1/images/"+key, anon, nil).must(t, http.StatusNotFound)
		}
	})

	bad := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"text pretending to be png", func() *http.Request {
			return multipartRequest(t, path, "image", "evil.png", []byte("<html><script>alert(1)</script></html>"))
		}, http.StatusUnsupportedMediaType},
		{"gif", func() *http.Request {
			return multipartRequest(t, path, "image", "a.gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
		}, http.StatusUnsupportedMediaType},
		{"png magic without the full signature", func() *http.Request { return multipartRequest(t, path, "image", "a.png", []byte("\x89PNG\r\n")) }, http.StatusUnsupportedMediaType},
		{"over 5 MiB", func() *http.Request {
			return multipartRequest(t, path, "image", "big.png", append(pngData, make([]byte, MaxImageBytes)...))
		}, http.StatusRequestEntityTooLarge},
		{"declared length far over the limit", func() *http.Request {
			req := multipartRequest(t, path, "image", "big.png", pngData)
			req.ContentLength = 50 << 20
			return req
		}, http.StatusRequestEntityTooLarge},
		{"empty image", func() *http.Request { return multipartRequest(t, path, "image", "a.png", nil) }, http.StatusBadRequest},
		{"wrong field", func() *http.Request { return multipartRequest(t, path, "file", "a.png", pngData) }, http.StatusBadRequest},
		{"not multipart", func() *http.Request { return requestWithBody("POST", path, "image/png", string(pngData)) }, http.StatusUnsupportedMediaType},
		{"broken multipart", func() *http.Request {
			return requestWithBody("POST", path, "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc")
		}, http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			n, files := len(outbox(t, ts.db)), blobFiles(t, ts)
			before, _ := ts.store.Product(t.Context(), p.ID)
			ts.send(tt.req(), sellerA).must(t, tt.want).problem(t)
			after, _ := ts.store.Product(t.Context(), p.ID)
			if len(outbox(t, ts.db)) != n || blobFiles(t, ts) != files || len(after.Images) != len(before.Images) {
				t.Fatal("a refused upload wrote something")
			}
		})
	}

	t.Run("a full product takes no more images", func(t *testing.T) {
		full := ts.product(sellerA, "Full", cat.ID, StatusActive)
		images := make([]string, MaxImages)
		for i := range images {
			images[i] = "https://cdn.example.com/" + string(rune('a'+i)) + ".png"
		}
		ts.do("PATCH", "/api/v1/products/"+full.ID, sellerA, map[string]any{"images": images}).must(t, http.StatusOK)
		files := blobFiles(t, ts)
		ts.send(multipartRequest(t, "/api/v1/products/"+full.ID+"/images", "image", "a.jpg", jpegBytes(t)), sellerA).must(t, http.StatusConflict)
		if blobFiles(t, ts) != files {
			t.Fatal("blob stored for a full product")
		}
	})
}

func TestSniffImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"png", pngBytes(t), "png"},
		{"jpeg", jpegBytes(t), "jpg"},
		{"webp", webpBytes(), "webp"},
		{"riff but wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`), ""},
		{"empty", nil, ""},
		{"jpeg magic only", []byte{0xFF, 0xD8}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sniffImage(tt.data); got != tt.want {
				t.Fatalf("sniff %q, want %q", got, tt.want)
			}
		})
	}
}
