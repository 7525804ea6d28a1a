package seed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
)

// plan is everything Run will create, drawn up front from one seeded
// random source so that a seed always gives the same marketplace, whatever
// order concurrent workers finish in.
type plan struct {
	sellers  []sellerSpec
	buyers   []buyerSpec
	products []productSpec
}

type sellerSpec struct {
	Account
	StoreName string
	Depts     []int // indexes into departments
}

type buyerSpec struct {
	Account
	Address address
}

// address is the JSON of a shipping address (auth's Address).
type address struct {
	Label      string `json:"label,omitempty"`
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
	Default    bool   `json:"default,omitempty"`
}

type productSpec struct {
	Seller      int // index into plan.sellers
	Dept, Cat   int // indexes into departments and its Children
	Title       string
	Description string
	Brand       string
	Attributes  map[string]string
	Variants    []variantSpec
	// Colour is what the image is painted in; nil: one derived from the title.
	Colour *colour
}

type variantSpec struct {
	SKU       string
	Options   map[string]string
	Price     int64 // euro cents
	CompareAt int64 // euro cents; 0: none
	OnHand    int64
}

// lowThreshold is the low-stock threshold the seeder sets on every SKU, so
// a stock of 1–5 shows as low.
const lowThreshold = 5

// demoDepts are the departments of the demo seller's store.
var demoDepts = []int{0, 2} // Clothing, Home & Kitchen

func newPlan(opts Options) plan {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x6d616c6c68697665)) // "mallhive"
	var p plan
	usedEmails := map[string]bool{DemoAdminEmail: true, DemoSellerEmail: true, DemoBuyerEmail: true}

	p.sellers = append(p.sellers, sellerSpec{
		Account:   Account{Email: DemoSellerEmail, Password: DemoSellerPassword, Name: "Demo Seller"},
		StoreName: "MallHive Demo Store", Depts: demoDepts,
	})
	usedStores := map[string]bool{"MallHive Demo Store": true}
	for i := 1; i < opts.Sellers; i++ {
		primary := (i - 1) % len(departments)
		depts := []int{primary}
		if rng.Float64() < 0.4 {
			if second := rng.IntN(len(departments)); second != primary {
				depts = append(depts, second)
			}
		}
		store := ""
		for try := 0; store == "" || usedStores[store]; try++ {
			store = pick(rng, storePrefixes) + " " + pick(rng, departments[primary].StoreSuffixes)
			if try > 20 {
				store = fmt.Sprintf("%s %d", store, i)
			}
		}
		usedStores[store] = true
		email := uniqueEmail(usedEmails, slug(store))
		p.sellers = append(p.sellers, sellerSpec{
			Account:   Account{Email: email, Name: personName(rng)},
			StoreName: store, Depts: depts,
		})
	}

	p.buyers = append(p.buyers, buyerSpec{
		Account: Account{Email: DemoBuyerEmail, Password: DemoBuyerPassword, Name: "Demo Buyer"},
		Address: address{Label: "Home", Name: "Demo Buyer", Line1: "1 Market Square", City: "Lisbon",
			PostalCode: "1100-148", Country: "PT", Default: true},
	})
	for i := 1; i < opts.Buyers; i++ {
		first, last := pick(rng, firstNames), pick(rng, lastNames)
		name := first + " " + last
		city := pick(rng, cities)
		p.buyers = append(p.buyers, buyerSpec{
			Account: Account{Email: uniqueEmail(usedEmails, strings.ToLower(fold(first)+"."+fold(last))), Name: name},
			Address: address{Label: "Home", Name: name, Line1: fmt.Sprintf("%d %s", 1+rng.IntN(180), pick(rng, streets)),
				City: city[0], PostalCode: city[1], Country: city[2], Default: true},
		})
	}

	// Sellers who specialise in each department; a department nobody
	// specialises in is stocked by everyone.
	specialists := make([][]int, len(departments))
	for i, s := range p.sellers {
		for _, d := range s.Depts {
			specialists[d] = append(specialists[d], i)
		}
	}
	titles := map[string]bool{}
	for i := range opts.Products {
		d := rng.IntN(len(departments))
		sellers := specialists[d]
		if len(sellers) == 0 {
			sellers = make([]int, len(p.sellers))
			for j := range sellers {
				sellers[j] = j
			}
		}
		p.products = append(p.products, newProduct(rng, i, d, pick(rng, sellers), titles))
	}
	return p
}

// newProduct draws product number n of department d.
func newProduct(rng *rand.Rand, n, d, seller int, titles map[string]bool) productSpec {
	dept := &departments[d]
	c := rng.IntN(len(dept.Children))
	cat := &dept.Children[c]
	p := productSpec{Seller: seller, Dept: d, Cat: c, Attributes: map[string]string{}}

	var adj, noun, author string
	for try := 0; try < 10 && (try == 0 || titles[p.Title]); try++ {
		adj, noun = pick(rng, cat.Adjectives), pick(rng, cat.Nouns)
		p.Brand = pick(rng, dept.Brands)
		if cat.TitleForms != nil {
			p.Title = strings.NewReplacer("{adj}", adj, "{noun}", noun).Replace(pick(rng, cat.TitleForms))
		} else {
			p.Title = p.Brand + " " + adj + " " + noun
		}
	}
	titles[p.Title] = true

	for _, a := range append(dept.Attributes[:len(dept.Attributes):len(dept.Attributes)], cat.Attributes...) {
		p.Attributes[a.Key] = pick(rng, a.Values)
	}
	if cat.AdjKey != "" {
		p.Attributes[cat.AdjKey] = strings.ToLower(adj)
	}
	if cat.Options == optFormat {
		author = personName(rng)
		p.Attributes["author"] = author
		p.Attributes["pages"] = strconv.Itoa(96 + rng.IntN(540))
		p.Attributes["isbn"] = isbn13(rng)
	}

	name := adj + " " + noun // the title without the brand
	if cat.TitleForms != nil {
		name = p.Title
	}
	p.Description = describe(rng, dept, cat, p.Title, name, p.Brand, adj, author, plural(noun) && cat.TitleForms == nil)
	p.Variants = variants(rng, dept, cat, skuPrefix(p.Brand, n))
	for _, v := range p.Variants {
		if name, ok := v.Options["colour"]; ok {
			col := colours[name]
			p.Colour = &col
			break
		}
	}
	return p
}

// describe writes an opener, one or two features and a closer. Sentences
// may name the {title}, its {name} without the brand, the {brand}, the
// material {adj} and a book's {author}; {is}, {It}, {its}, {s} and {es}
// agree with a plural product ("the … Boots are").
func describe(rng *rand.Rand, dept *department, cat *category, title, name, brand, adj, author string, many bool) string {
	if cat.AdjKey != "" {
		adj = strings.ToLower(adj)
	}
	grammar := []string{"{is}", "is", "{It}", "It", "{its}", "its", "{s}", "s", "{es}", "es"}
	if many {
		grammar = []string{"{is}", "are", "{It}", "They", "{its}", "their", "{s}", "", "{es}", ""}
	}
	r := strings.NewReplacer(append(grammar, "{title}", title, "{name}", name, "{brand}", brand,
		"{adj}", adj, "{author}", author)...)
	openers, features := dept.Openers, dept.Features
	if cat.Openers != nil {
		openers, features = cat.Openers, cat.Features
	}
	sentences := []string{r.Replace(pick(rng, openers))}
	for _, f := range rng.Perm(len(features))[:1+rng.IntN(2)] {
		sentences = append(sentences, r.Replace(features[f]))
	}
	sentences = append(sentences, pick(rng, closers))
	return strings.Join(sentences, " ")
}

// plural guesses from its last word whether a product noun is plural
// ("Chelsea Boots", "Earbuds"), which is all the word lists need.
func plural(noun string) bool {
	words := strings.Fields(noun)
	last := words[len(words)-1]
	return strings.HasSuffix(last, "s") && !strings.HasSuffix(last, "ss")
}

// variants draws 1–4 variants with prices, compare-at prices and stock.
func variants(rng *rand.Rand, dept *department, cat *category, prefix string) []variantSpec {
	base := logUniform(rng, float64(cat.Price[0]), float64(cat.Price[1]))
	type opt struct {
		options map[string]string
		step    int // price step along a scale
	}
	var opts []opt
	// sizesAndColours draws a run of sizes (around the middle for shoes,
	// whose extremes are rarely stocked) in one or two colours.
	sizesAndColours := func(sizes []string, middle bool) {
		total := []int{1, 2, 2, 3, 3, 3, 4, 4, 4}[rng.IntN(9)]
		nColours, nSizes := 1, total
		switch {
		case total == 4 && rng.IntN(2) == 0:
			nColours, nSizes = 2, 2
		case total == 2 && rng.IntN(3) == 0:
			nColours, nSizes = 2, 1
		}
		first := rng.IntN(len(sizes) - nSizes + 1)
		if middle {
			first = 2 + rng.IntN(len(sizes)-nSizes-3)
		}
		for _, ci := range rng.Perm(len(dept.Colours))[:nColours] {
			for _, s := range sizes[first : first+nSizes] {
				opts = append(opts, opt{options: map[string]string{"size": s, "colour": dept.Colours[ci]}})
			}
		}
	}
	switch cat.Options {
	case optApparel:
		sizesAndColours(apparelSizes, false)
	case optShoe:
		sizesAndColours(shoeSizes, true)
	case optColour:
		n := 1 + rng.IntN(4)
		for _, ci := range rng.Perm(len(dept.Colours))[:n] {
			opts = append(opts, opt{options: map[string]string{"colour": dept.Colours[ci]}})
		}
	case optScale:
		n := 1 + rng.IntN(min(4, len(cat.Scale)))
		first := rng.IntN(len(cat.Scale) - n + 1)
		for i, s := range cat.Scale[first : first+n] {
			opts = append(opts, opt{options: map[string]string{cat.ScaleKey: s}, step: i})
		}
	case optFormat:
		opts = append(opts, opt{options: map[string]string{"format": bookFormats[0]}})
		if rng.Float64() < 0.6 {
			opts = append(opts, opt{options: map[string]string{"format": bookFormats[1]}, step: 1})
		}
	default:
		opts = append(opts, opt{options: map[string]string{}})
	}

	step := cat.Step
	if cat.Options == optFormat {
		step = 1.6 // hardcover
	}
	discount := 0.0
	if rng.Float64() < 0.25 {
		discount = 1.15 + rng.Float64()*0.35
	}
	// One price ending per product, so variants at one price match.
	ending := []int64{1, 1, 1, 1, 10, 10, 0}[rng.IntN(7)]
	out := make([]variantSpec, len(opts))
	seen := map[string]bool{}
	for i, o := range opts {
		price := prettyPrice(base*math.Pow(math.Max(step, 1), float64(o.step)), ending)
		v := variantSpec{Options: o.options, Price: price, OnHand: stockLevel(rng)}
		if discount > 0 {
			v.CompareAt = prettyPrice(float64(price)*discount, ending)
			if v.CompareAt <= price {
				v.CompareAt = price + 500
			}
		}
		v.SKU = prefix
		for _, k := range []string{"size", "colour", "format", "volume", "weight", "length"} {
			if val, ok := o.options[k]; ok {
				v.SKU += "-" + optionCode(val)
			}
		}
		if seen[v.SKU] {
			v.SKU += "-" + strconv.Itoa(i+1)
		}
		seen[v.SKU] = true
		out[i] = v
	}
	return out
}

// stockLevel: about 8% sold out, 12% low (1–5), the rest 6–240.
func stockLevel(rng *rand.Rand) int64 {
	switch r := rng.Float64(); {
	case r < 0.08:
		return 0
	case r < 0.20:
		return 1 + rng.Int64N(lowThreshold)
	default:
		return 6 + rng.Int64N(235)
	}
}

// logUniform favours cheaper prices within a range, as real catalogs do.
func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

// prettyPrice rounds cents to a shop price: whole euros (fives from 100 €
// up) less ending cents (1 for .99, 10 for .90).
func prettyPrice(cents float64, ending int64) int64 {
	euros := math.Max(1, math.Round(cents/100))
	if euros >= 100 {
		euros = math.Round(euros/5) * 5
	}
	return int64(euros)*100 - ending
}

// skuPrefix is three letters of the brand and the product's number.
func skuPrefix(brand string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(fold(brand)) {
		if b.Len() == 3 {
			break
		}
		if r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	return fmt.Sprintf("%s-%05d", b.String(), n+1)
}

// optionCode abbreviates an option value for a SKU: "M", "NAVY",
// "HEAGRE" for Heather Grey, "250G".
func optionCode(v string) string {
	words := strings.FieldsFunc(strings.ToUpper(fold(v)), func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if len(words) == 1 {
		return truncate(words[0], 5)
	}
	var b strings.Builder
	for _, w := range words {
		b.WriteString(truncate(w, 3))
	}
	return truncate(b.String(), 8)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// isbn13 makes a well-formed ISBN-13 (978 prefix, valid check digit).
func isbn13(rng *rand.Rand) string {
	digits := []int{9, 7, 8}
	for range 9 {
		digits = append(digits, rng.IntN(10))
	}
	sum := 0
	for i, d := range digits {
		sum += d * (1 + 2*(i%2))
	}
	digits = append(digits, (10-sum%10)%10)
	var b strings.Builder
	for _, d := range digits {
		b.WriteByte(byte('0' + d))
	}
	return b.String()
}

func personName(rng *rand.Rand) string {
	return pick(rng, firstNames) + " " + pick(rng, lastNames)
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// uniqueEmail returns local@demo.mallhive.dev, numbered when taken.
func uniqueEmail(used map[string]bool, local string) string {
	email := local + "@" + demoDomain
	for n := 2; used[email]; n++ {
		email = fmt.Sprintf("%s%d@%s", local, n, demoDomain)
	}
	used[email] = true
	return email
}

// slug lower-cases s to ASCII words joined by "-".
func slug(s string) string {
	words := strings.FieldsFunc(strings.ToLower(fold(s)), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
	return strings.Join(words, "-")
}

// fold replaces the accented letters the word lists use with ASCII and
// drops what is not a letter, digit, space or punctuation of a name.
func fold(s string) string {
	r := strings.NewReplacer("é", "e", "è", "e", "ë", "e", "á", "a", "à", "a", "å", "a", "ä", "a", "í", "i",
		"ó", "o", "ö", "o", "ø", "o", "ú", "u", "ü", "u", "ñ", "n", "ç", "c", "É", "E", "Å", "A", "Ø", "O", "'", "")
	return strings.Map(func(c rune) rune {
		if c > unicode.MaxASCII {
			return -1
		}
		return c
	}, r.Replace(s))
}
