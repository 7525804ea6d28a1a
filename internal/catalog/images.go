package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// Images are stored under the SHA-256 of their bytes, so a key names one
// content forever: it can be cached as immutable and uploading the same
// image twice stores it once.
const (
	imagePathPrefix = "/api/v1/images/"
	immutable       = "public, max-age=31536000, immutable"
	// multipartSlack covers the multipart framing and small extra fields
	// around the image part.
	multipartSlack = 64 << 10
	maxParts       = 8
)

var imageKeyRE = regexp.MustCompile(`^[0-9a-f]{64}\.(jpg|png|webp)$`)

var imageTypes = map[string]string{"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

// sniffImage returns the file extension of a JPEG, PNG or WebP image, or ""
// for anything else. The WHATWG sniffer and the format's magic bytes must
// agree, so a file with a lying name or Content-Type is refused.
func sniffImage(b []byte) string {
	ct := http.DetectContentType(b)
	switch {
	case ct == "image/jpeg" && bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "jpg"
	case ct == "image/png" && bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case ct == "image/webp" && len(b) >= 16 && string(b[0:4]) == "RIFF" && string(b[8:15]) == "WEBPVP8":
		return "webp"
	}
	return ""
}

// uploadImage stores the multipart field "image" and appends its URL to the
// product. Errors: 401/403 by role, 404 for another seller's product, 409
// when the product has MaxImages, 413 past MaxImageBytes, 415 for anything
// but JPEG, PNG or WebP.
func (s *Service) uploadImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pr, err := authn.Require(ctx, authn.RoleSeller)
	if err != nil {
		return err
	}
	id, err := pathID(r, "product")
	if err != nil {
		return err
	}
	p, err := s.store.Product(ctx, id)
	if err != nil {
		return err
	}
	if p.SellerID != pr.UserID {
		return errs.E(errs.NotFound, "no such product")
	}
	// Checked before anything is stored, so a full product leaves no blob.
	if len(p.Images) >= MaxImages {
		return errs.E(errs.Conflict, "a product has at most %d images", MaxImages)
	}
	data, err := readImagePart(w, r)
	if err != nil {
		return err
	}
	ext := sniffImage(data)
	if ext == "" {
		return errs.E(errs.Unsupported, "the image must be JPEG, PNG or WebP")
	}
	sum := sha256.Sum256(data)
	key := hex.EncodeToString(sum[:]) + "." + ext
	exists, err := s.bucket.Exists(ctx, key)
	if err != nil {
		return storeUnavailable(err)
	}
	if !exists {
		if err := s.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: imageTypes[ext], CacheControl: immutable}); err != nil {
			return storeUnavailable(err)
		}
	}
	url := imagePathPrefix + key
	updated, err := s.store.UpdateProduct(ctx, p.ID, func(p *Product) error {
		switch {
		case p.SellerID != pr.UserID:
			return errs.E(errs.NotFound, "no such product")
		case slices.Contains(p.Images, url):
			return ErrNoChange
		case len(p.Images) >= MaxImages:
			return errs.E(errs.Conflict, "a product has at most %d images", MaxImages)
		}
		p.Images = append(p.Images, url)
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", url)
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"url": url, "product": updated})
	return nil
}

// readImagePart returns the bytes of the "image" part of a bounded
// multipart/form-data body.
func readImagePart(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, errs.E(errs.Unsupported, "upload the image as multipart/form-data in the field \"image\"")
	}
	if r.ContentLength > MaxImageBytes+multipartSlack {
		return nil, tooLarge()
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxImageBytes+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, errs.E(errs.Invalid, "malformed multipart body")
	}
	for range maxParts {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		if part.FormName() != "image" {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, readErr(err)
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(part, MaxImageBytes+1))
		switch {
		case err != nil:
			return nil, readErr(err)
		case len(data) > MaxImageBytes:
			return nil, tooLarge()
		case len(data) == 0:
			return nil, errs.Field("image", "is empty")
		}
		return data, nil
	}
	return nil, errs.Field("image", "is required")
}

func tooLarge() error {
	return errs.E(errs.TooLarge, "the image is larger than %d MiB", MaxImageBytes>>20)
}

func readErr(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooLarge()
	}
	return errs.E(errs.Invalid, "malformed multipart body")
}

func storeUnavailable(err error) error {
	return &errs.Error{Code: errs.Unavailable, Message: "the image store is unavailable", Err: err}
}

// getImage serves a stored image. The key is the content hash, so the
// response is cacheable forever and the ETag never changes.
func (s *Service) getImage(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	if !imageKeyRE.MatchString(key) {
		return errs.E(errs.NotFound, "no such image")
	}
	hash, ext, _ := strings.Cut(key, ".")
	etag := `"` + hash + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", immutable)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	rd, err := s.bucket.NewReader(r.Context(), key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		h.Del("ETag")
		h.Del("Cache-Control")
		return errs.E(errs.NotFound, "no such image")
	}
	if err != nil {
		return storeUnavailable(err)
	}
	defer rd.Close()
	h.Set("Content-Type", imageTypes[ext])
	h.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	// The bytes were sniffed at upload; never let a browser re-interpret
	// them, nor run anything if one is opened directly.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rd)
	return nil
}

// etagMatch implements If-None-Match's weak comparison for our strong tags.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
