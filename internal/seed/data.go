package seed

// The word lists the generator draws from. They are plain data: a
// department (top-level category) names its brands, store names, attributes
// and sentences; each of its categories names the nouns, materials or
// adjectives, options and price range of what is sold there.

// optionKind says how a category's products vary.
type optionKind int

const (
	optNone    optionKind = iota // one variant
	optApparel                   // size XS–XXL × colour
	optShoe                      // EU size × colour
	optColour                    // colour only
	optScale                     // one ordered option (size, volume, weight…); price rises along it
	optFormat                    // books: paperback, hardcover
)

// department is a top-level category.
type department struct {
	Slug, Name string
	Brands     []string
	// StoreSuffixes end the names of stores that specialise here.
	StoreSuffixes []string
	Colours       []string
	Attributes    []attribute
	// Openers and Features are description sentences; see describe for
	// their placeholders.
	Openers  []string
	Features []string
	Children []category
	// Shape is the figure drawn on this department's product images.
	Shape shape
}

// category is a leaf category and what its products look like.
type category struct {
	Slug, Name string
	// Adjectives precede the noun in a title: materials when AdjKey is
	// set (the attribute they fill), else descriptive words.
	Adjectives []string
	AdjKey     string
	Nouns      []string
	Options    optionKind
	// ScaleKey and Scale are the option of optScale, smallest first; each
	// step multiplies the price by Step.
	ScaleKey string
	Scale    []string
	Step     float64
	// Price is the range of a base price in euro cents.
	Price [2]int64
	// Attributes add to (or override) the department's; Openers and
	// Features, when set, replace the department's.
	Attributes []attribute
	Openers    []string
	Features   []string
	// TitleForms make book titles ({adj}, {noun}); empty for the usual
	// brand + adjective + noun.
	TitleForms []string
}

type attribute struct {
	Key    string
	Values []string
}

type colour struct {
	Name    string
	R, G, B uint8
}

var colours = map[string]colour{
	"Black": {"Black", 32, 32, 36}, "White": {"White", 238, 236, 230}, "Navy": {"Navy", 31, 45, 84},
	"Charcoal": {"Charcoal", 64, 66, 72}, "Heather Grey": {"Heather Grey", 150, 152, 156},
	"Forest Green": {"Forest Green", 34, 85, 51}, "Olive": {"Olive", 112, 114, 56}, "Rust": {"Rust", 168, 74, 40},
	"Burgundy": {"Burgundy", 110, 28, 44}, "Mustard": {"Mustard", 214, 166, 40}, "Sky Blue": {"Sky Blue", 120, 176, 222},
	"Sand": {"Sand", 210, 186, 148}, "Terracotta": {"Terracotta", 196, 98, 70}, "Sage": {"Sage", 150, 168, 132},
	"Cream": {"Cream", 240, 228, 200}, "Blush Pink": {"Blush Pink", 232, 170, 170}, "Cobalt": {"Cobalt", 40, 80, 190},
	"Teal": {"Teal", 30, 120, 120}, "Silver": {"Silver", 192, 196, 200}, "Graphite": {"Graphite", 56, 60, 66},
	"Midnight Blue": {"Midnight Blue", 24, 32, 64}, "Coral": {"Coral", 240, 120, 96}, "Lilac": {"Lilac", 184, 160, 214},
	"Ochre": {"Ochre", 200, 140, 50}, "Natural": {"Natural", 222, 204, 170}, "Red": {"Red", 200, 40, 44},
	"Yellow": {"Yellow", 244, 204, 60}, "Orange": {"Orange", 240, 130, 40}, "Tan": {"Tan", 184, 140, 96},
	"Brown": {"Brown", 100, 66, 44}, "Stone": {"Stone", 180, 174, 160},
}

var (
	apparelSizes = []string{"XS", "S", "M", "L", "XL", "XXL"}
	shoeSizes    = []string{"36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46"}
	bookFormats  = []string{"Paperback", "Hardcover"}
	origins      = []string{"Portugal", "Italy", "Lithuania", "Scotland", "Spain", "Poland", "Denmark", "Turkey", "Peru", "Vietnam", "Germany", "France"}
)

// closers end every description.
var closers = []string{
	"Ships within two working days from the seller's own stock.",
	"Free returns within 30 days.",
	"Packed plastic-free in recycled cardboard.",
	"Backed by the seller's two-year guarantee.",
	"Made in small batches, so each piece may vary slightly.",
	"Order before 2 pm for same-day dispatch.",
}

var departments = []department{
	{
		Slug: "clothing", Name: "Clothing", Shape: shapeCircle,
		Brands:        []string{"Fjellgarn", "Nordlys", "Maison Lune", "Kestrel & Co", "Hartwell", "Alder Row", "Saltwick", "Linnea", "Brume", "Oakmoor"},
		StoreSuffixes: []string{"Outfitters", "Knitwear Co.", "Apparel", "Clothing Co.", "Wardrobe"},
		Colours:       []string{"Navy", "Charcoal", "Heather Grey", "Forest Green", "Olive", "Rust", "Burgundy", "Mustard", "Cream", "Black", "White", "Sky Blue", "Sand"},
		Attributes: []attribute{
			{"fit", []string{"Regular", "Slim", "Relaxed", "Oversized"}},
			{"care", []string{"Machine wash 30 °C", "Hand wash cold", "Dry clean only", "Machine wash 40 °C"}},
			{"origin", origins},
		},
		Openers: []string{
			"The {title} {is} cut from {adj} for comfort from morning to night.",
			"A wardrobe staple from {brand}, the {name} go{es} with almost everything.",
			"{brand} designed the {name} to be worn for years, not seasons.",
		},
		Features: []string{
			"Reinforced seams and a clean finish inside make it last.",
			"The fit is true to size; size up for a looser look.",
			"{It} keep{s} {its} shape wash after wash.",
			"Soft against the skin and easy to layer.",
		},
		Children: []category{
			{Slug: "sweaters-knitwear", Name: "Sweaters & Knitwear", AdjKey: "material", Options: optApparel, Price: [2]int64{3900, 18900},
				Adjectives: []string{"Merino Wool", "Cashmere", "Lambswool", "Organic Cotton", "Alpaca Blend", "Cable-Knit Wool"},
				Nouns:      []string{"Crew Sweater", "V-Neck Jumper", "Cardigan", "Turtleneck", "Half-Zip Pullover", "Roll-Neck Sweater"}},
			{Slug: "t-shirts-tops", Name: "T-Shirts & Tops", AdjKey: "material", Options: optApparel, Price: [2]int64{1490, 4990},
				Adjectives: []string{"Organic Cotton", "Linen", "Slub Jersey", "Pima Cotton", "Bamboo Jersey"},
				Nouns:      []string{"Crew T-Shirt", "Pocket Tee", "Long-Sleeve Top", "Henley", "Polo Shirt", "Tank Top"}},
			{Slug: "jackets-coats", Name: "Jackets & Coats", AdjKey: "material", Options: optApparel, Price: [2]int64{7900, 34900},
				Adjectives: []string{"Waxed Cotton", "Recycled Down", "Wool Blend", "Ripstop", "Softshell", "Corduroy"},
				Nouns:      []string{"Field Jacket", "Parka", "Overcoat", "Bomber Jacket", "Rain Shell", "Puffer Vest"}},
			{Slug: "trousers-jeans", Name: "Trousers & Jeans", AdjKey: "material", Options: optApparel, Price: [2]int64{4900, 14900},
				Adjectives: []string{"Selvedge Denim", "Stretch Twill", "Corduroy", "Linen", "Organic Denim"},
				Nouns:      []string{"Slim Jeans", "Chinos", "Straight-Leg Trousers", "Cargo Trousers", "Relaxed Jeans"}},
			{Slug: "dresses-skirts", Name: "Dresses & Skirts", AdjKey: "material", Options: optApparel, Price: [2]int64{3900, 15900},
				Adjectives: []string{"Linen", "Viscose", "Silk", "Cotton Poplin", "Jersey"},
				Nouns:      []string{"Wrap Dress", "Midi Skirt", "Shirt Dress", "Slip Dress", "Pleated Skirt"}},
			{Slug: "clothing-accessories", Name: "Accessories", AdjKey: "material", Options: optColour, Price: [2]int64{1490, 8900},
				Adjectives: []string{"Merino Wool", "Leather", "Cashmere", "Recycled Polyester", "Cotton Canvas"},
				Nouns:      []string{"Beanie", "Scarf", "Gloves", "Belt", "Tote Bag", "Cap"}},
		},
	},
	{
		Slug: "shoes", Name: "Shoes", Shape: shapeRoundedRect,
		Brands:        []string{"Stride & Co", "Vanta", "Bergsko", "Calder", "Ortega Shoemakers", "Lumo Run", "Pelle Rossa", "Trailhead"},
		StoreSuffixes: []string{"Shoe Co.", "Footwear", "Cobblers", "Shoe Room"},
		Colours:       []string{"Black", "White", "Tan", "Brown", "Navy", "Stone", "Olive", "Burgundy"},
		Attributes: []attribute{
			{"sole", []string{"Rubber", "EVA foam", "Leather", "Crepe", "Vibram rubber"}},
			{"width", []string{"Regular", "Wide"}},
			{"origin", origins},
		},
		Openers: []string{
			"The {title} pair{s} a {adj} upper with a sole made for long days.",
			"{brand} builds every pair on its own last, so the {name} fit{s} from the first wear.",
			"Made to be resoled, the {title} {is} in it for the long run.",
		},
		Features: []string{
			"A cushioned footbed and a padded collar keep it comfortable.",
			"{It} run{s} true to size; between sizes, take the larger one.",
			"The outsole grips on wet pavements.",
			"Stitched, not just glued, where it matters.",
		},
		Children: []category{
			{Slug: "sneakers", Name: "Sneakers", AdjKey: "upper", Options: optShoe, Price: [2]int64{5900, 16900},
				Adjectives: []string{"Suede", "Canvas", "Leather", "Knit", "Recycled Mesh"},
				Nouns:      []string{"Low-Top Sneakers", "Court Sneakers", "Runner Sneakers", "Slip-On Sneakers", "High-Top Sneakers"}},
			{Slug: "boots", Name: "Boots", AdjKey: "upper", Options: optShoe, Price: [2]int64{8900, 24900},
				Adjectives: []string{"Waterproof Leather", "Suede", "Nubuck", "Full-Grain Leather"},
				Nouns:      []string{"Chelsea Boots", "Hiking Boots", "Lace-Up Boots", "Ankle Boots", "Work Boots"}},
			{Slug: "sandals", Name: "Sandals", AdjKey: "upper", Options: optShoe, Price: [2]int64{2490, 8900},
				Adjectives: []string{"Leather", "Cork", "Recycled Rubber", "Webbing"},
				Nouns:      []string{"Slide Sandals", "Sport Sandals", "Flip-Flops", "Strappy Sandals"}},
			{Slug: "formal-shoes", Name: "Formal Shoes", AdjKey: "upper", Options: optShoe, Price: [2]int64{9900, 26900},
				Adjectives: []string{"Calf Leather", "Patent Leather", "Suede", "Cordovan"},
				Nouns:      []string{"Oxford Shoes", "Derby Shoes", "Penny Loafers", "Brogues", "Monk Straps"}},
			{Slug: "slippers", Name: "Slippers", AdjKey: "upper", Options: optShoe, Price: [2]int64{2490, 7900},
				Adjectives: []string{"Shearling", "Felted Wool", "Fleece-Lined Suede"},
				Nouns:      []string{"Moccasin Slippers", "Mule Slippers", "Bootie Slippers"}},
		},
	},
	{
		Slug: "home-kitchen", Name: "Home & Kitchen", Shape: shapeDiamond,
		Brands:        []string{"Hearthwell", "Kastell", "Otto & Vine", "Porcelana", "Copperleaf", "Nordic Nest", "Maple & Ash", "Casa Lumi"},
		StoreSuffixes: []string{"Home Goods", "Kitchenworks", "Living", "Homestore", "& Hearth"},
		Colours:       []string{"White", "Cream", "Sage", "Terracotta", "Charcoal", "Sand", "Teal", "Ochre", "Natural"},
		Attributes: []attribute{
			{"origin", origins},
		},
		Openers: []string{
			"The {title} {is} made to be used every day and passed on.",
			"{brand} makes the {name} in a small family workshop.",
			"As good to look at as to use: the {name} from {brand}.",
		},
		Features: []string{
			"Designed in Copenhagen and finished by hand.",
			"Sized to fit standard cupboards and drawers.",
			"Every piece is checked by hand before it ships.",
			"Its simple lines sit well in any room.",
		},
		Children: []category{
			{Slug: "cookware", Name: "Cookware", Attributes: []attribute{{"care", []string{"Dishwasher safe", "Hand wash only", "Oven safe to 250 °C"}}, {"hob", []string{"All hobs including induction", "Gas and electric", "Induction"}}}, AdjKey: "material", Options: optScale, ScaleKey: "size", Scale: []string{"20 cm", "24 cm", "28 cm", "32 cm"}, Step: 1.25, Price: [2]int64{2490, 22900},
				Adjectives: []string{"Cast Iron", "Tri-Ply Stainless", "Carbon Steel", "Enamelled Cast Iron", "Ceramic Non-Stick"},
				Nouns:      []string{"Frying Pan", "Saucepan", "Dutch Oven", "Sauté Pan", "Wok", "Stockpot"}},
			{Slug: "tableware", Name: "Tableware", Attributes: []attribute{{"care", []string{"Dishwasher safe", "Dishwasher and microwave safe", "Hand wash only"}}}, AdjKey: "material", Options: optColour, Price: [2]int64{1990, 8900},
				Adjectives: []string{"Stoneware", "Porcelain", "Glazed Ceramic", "Recycled Glass"},
				Nouns:      []string{"Dinner Plate Set", "Pasta Bowls", "Mug Set", "Tumbler Set", "Serving Platter"}},
			{Slug: "bedding", Name: "Bedding", Attributes: []attribute{{"care", []string{"Machine wash 40 °C", "Machine wash 60 °C", "Tumble dry low"}}, {"thread_count", []string{"200", "300", "400"}}}, AdjKey: "material", Options: optScale, ScaleKey: "size", Scale: []string{"Single", "Double", "King", "Super King"}, Step: 1.2, Price: [2]int64{3900, 18900},
				Adjectives: []string{"Washed Linen", "Percale Cotton", "Sateen Cotton", "Organic Cotton"},
				Nouns:      []string{"Duvet Cover", "Sheet Set", "Pillowcase Pair", "Quilt"}},
			{Slug: "decor", Name: "Decor", Attributes: []attribute{{"care", []string{"Wipe clean", "Dust with a dry cloth"}}}, AdjKey: "material", Options: optColour, Price: [2]int64{1490, 14900},
				Adjectives: []string{"Hand-Blown Glass", "Oak", "Rattan", "Ceramic", "Brass"},
				Nouns:      []string{"Vase", "Table Lamp", "Candle Holder", "Wall Mirror", "Picture Frame"}},
			{Slug: "storage-organisation", Name: "Storage & Organisation", Attributes: []attribute{{"care", []string{"Wipe clean"}}}, AdjKey: "material", Options: optNone, Price: [2]int64{990, 5900},
				Adjectives: []string{"Bamboo", "Woven Seagrass", "Powder-Coated Steel", "Wool Felt"},
				Nouns:      []string{"Storage Basket", "Shelf Organiser", "Drawer Dividers", "Laundry Hamper"}},
			{Slug: "coffee-tea", Name: "Coffee & Tea",
				Openers: []string{
					"Roasted and packed in small batches, the {title} {is} best within six weeks of opening.",
					"{brand} buys the {name} directly from the growers, at a price that keeps them growing.",
				},
				Features: []string{"Packed in a resealable, compostable bag.", "The roast or harvest date is printed on every pack.", "Grown at altitude and picked by hand."}, Attributes: []attribute{{"origin", []string{"Ethiopia", "Colombia", "Guatemala", "Kenya", "Darjeeling, India", "Shizuoka, Japan", "Assam, India"}}}, Options: optScale, ScaleKey: "weight", Scale: []string{"250 g", "500 g", "1 kg"}, Step: 1.8, Price: [2]int64{690, 3490},
				Adjectives: []string{"Single-Origin", "Organic", "Small-Batch", "Fair-Trade"},
				Nouns:      []string{"Espresso Beans", "Filter Roast", "Darjeeling Tea", "Sencha Green Tea", "Rooibos Blend", "Chai Blend"}},
		},
	},
	{
		Slug: "electronics", Name: "Electronics", Shape: shapeRing,
		Brands:        []string{"Voltaic", "Auralis", "Northbeam", "Kinetik", "Lumenix", "Pixelforge", "Solace Audio", "Tandem Labs"},
		StoreSuffixes: []string{"Electronics", "Tech Supply", "Gadgets", "Digital"},
		Colours:       []string{"Black", "White", "Silver", "Graphite", "Midnight Blue", "Sage", "Coral"},
		Attributes: []attribute{
			{"warranty", []string{"1 year", "2 years", "3 years"}},
			{"connectivity", []string{"Bluetooth 5.3", "USB-C", "Wi-Fi 6", "Bluetooth 5.0", "USB-C and Bluetooth"}},
		},
		Openers: []string{
			"The {title} do{es} one job and do{es} it well.",
			"{brand} tuned the {name} for everyday reliability rather than spec-sheet bragging.",
			"Sets up in minutes: the {name} from {brand}.",
		},
		Features: []string{
			"Firmware updates arrive over the air.",
			"It comes with a USB-C cable and a quick-start guide.",
			"Tested for 10,000 hours before it left the lab.",
			"Low standby power keeps the bill down.",
		},
		Children: []category{
			{Slug: "headphones-audio", Name: "Headphones & Audio", Attributes: []attribute{{"battery_life", []string{"20 hours", "30 hours", "40 hours"}}}, Options: optColour, Price: [2]int64{2990, 34900},
				Adjectives: []string{"Wireless", "Noise-Cancelling", "Open-Back", "Waterproof", "Studio"},
				Nouns:      []string{"Over-Ear Headphones", "Earbuds", "Bluetooth Speaker", "Soundbar", "Headphones"}},
			{Slug: "phone-accessories", Name: "Phone Accessories", Options: optColour, Price: [2]int64{990, 4990},
				Adjectives: []string{"MagSafe", "Rugged", "Slim", "Recycled"},
				Nouns:      []string{"Phone Case", "Screen Protector", "Car Mount", "Wireless Charger", "Phone Grip"}},
			{Slug: "computer-accessories", Name: "Computer Accessories", Options: optColour, Price: [2]int64{1990, 18900},
				Adjectives: []string{"Mechanical", "Ergonomic", "Wireless", "Low-Profile", "Aluminium"},
				Nouns:      []string{"Keyboard", "Mouse", "Laptop Stand", "USB-C Hub", "Webcam", "Monitor Light Bar"}},
			{Slug: "smart-home", Name: "Smart Home", Attributes: []attribute{{"connectivity", []string{"Wi-Fi", "Zigbee", "Thread", "Wi-Fi and Bluetooth"}}}, Options: optNone, Price: [2]int64{1490, 19900},
				Adjectives: []string{"Wi-Fi", "Zigbee", "Matter-Ready", "Battery-Powered"},
				Nouns:      []string{"Smart Plug", "Smart Bulb", "Thermostat", "Door Sensor", "Video Doorbell", "Air Quality Monitor"}},
			{Slug: "chargers-cables", Name: "Chargers & Cables", Options: optScale, ScaleKey: "length", Scale: []string{"1 m", "2 m", "3 m"}, Step: 1.15, Price: [2]int64{990, 5990},
				Adjectives: []string{"Braided", "Fast-Charging", "Heavy-Duty", "Right-Angle"},
				Nouns:      []string{"USB-C Cable", "Lightning Cable", "Charging Cable", "Charger Cable"}},
		},
	},
	{
		Slug: "books", Name: "Books", Shape: shapeBook,
		Brands:        []string{"Lanternfish Press", "Harrow & Finch", "Bluewater Books", "Quill House", "Northwind Publishing", "Marigold Editions"},
		StoreSuffixes: []string{"Books", "Booksellers", "Reading Room", "Bookshop"},
		Colours:       []string{"Navy", "Burgundy", "Forest Green", "Mustard", "Cream", "Teal", "Coral"},
		Attributes: []attribute{
			{"language", []string{"English"}},
		},
		Openers: []string{
			"{title} is {author}'s most talked-about book yet.",
			"In {title}, {author} takes readers somewhere they did not expect to go.",
			"Published by {brand}, {title} is the kind of book you lend out and never get back.",
		},
		Features: []string{
			"Warm, sharp and impossible to put down.",
			"A favourite of independent booksellers this season.",
			"Printed on FSC-certified paper.",
			"With a new afterword by the author.",
		},
		Children: []category{
			{Slug: "fiction", Name: "Fiction", Options: optFormat, Price: [2]int64{999, 2499},
				Adjectives: []string{"Silent", "Last", "Hidden", "Burning", "Paper", "Salt", "Quiet", "Glass", "Distant", "Winter"},
				Nouns:      []string{"Harbour", "Orchard", "Lighthouse", "Cartographer", "Archivist", "Garden", "River", "Stranger", "Island", "Daughter"},
				TitleForms: []string{"The {adj} {noun}", "The {adj} {noun}: A Novel", "A {adj} {noun}"}},
			{Slug: "cookbooks", Name: "Cookbooks", Options: optFormat, Price: [2]int64{1999, 3999},
				Adjectives: []string{"Everyday", "Slow", "Seasonal", "Nordic", "Mediterranean", "Green", "Simple"},
				Nouns:      []string{"Kitchen", "Table", "Bread", "Pantry", "Harvest", "Suppers", "Baking"},
				TitleForms: []string{"{adj} {noun}: Recipes for Every Day", "The {adj} {noun}", "{adj} {noun}"}},
			{Slug: "science-nature", Name: "Science & Nature", Options: optFormat, Price: [2]int64{1299, 2999},
				Adjectives: []string{"Hidden", "Secret", "Curious", "Wild", "Invisible"},
				Nouns:      []string{"Trees", "Fungi", "Rivers", "Bees", "Stars", "Oceans", "Birds", "Microbes"},
				TitleForms: []string{"The {adj} Life of {noun}", "{adj} {noun}: A Natural History", "On {adj} {noun}"}},
			{Slug: "travel", Name: "Travel", Options: optFormat, Price: [2]int64{1299, 2999},
				Adjectives: []string{"Walking", "Slow", "Hidden", "Wild", "Pocket"},
				Nouns:      []string{"Lisbon", "the Dolomites", "Kyoto", "the Highlands", "Iceland", "Andalusia", "the Baltic Coast"},
				TitleForms: []string{"{adj} {noun}: A Travel Guide", "{adj} Days in {noun}", "The {adj} Guide to {noun}"}},
			{Slug: "childrens-books", Name: "Children's Books", Options: optFormat, Price: [2]int64{699, 1799},
				Adjectives: []string{"Little", "Brave", "Sleepy", "Curious", "Tiny", "Grumpy"},
				Nouns:      []string{"Fox", "Dragon", "Moon", "Balloon", "Bear", "Owl", "Tugboat"},
				TitleForms: []string{"The {adj} {noun}", "{adj} {noun} Goes to Sea", "Goodnight, {adj} {noun}"}},
		},
	},
	{
		Slug: "sports-outdoors", Name: "Sports & Outdoors", Shape: shapeTriangle,
		Brands:        []string{"Peakline", "Fjordsport", "Ridgeback", "Velo Nord", "Aquarius", "Summit & Co", "Trailhead", "Kolibri Outdoor"},
		StoreSuffixes: []string{"Outdoor Supply", "Sports", "Adventure Co.", "Basecamp"},
		Colours:       []string{"Black", "Forest Green", "Orange", "Cobalt", "Red", "Yellow", "Graphite", "Teal"},
		Attributes: []attribute{
			{"weight", []string{"180 g", "320 g", "450 g", "750 g", "1.2 kg", "2.1 kg"}},
			{"warranty", []string{"2 years", "5 years", "Lifetime"}},
		},
		Openers: []string{
			"The {title} {is} built for early starts and long days out.",
			"{brand} field-tested the {name} on three continents.",
			"The {title} earn{s} {its} place in the pack.",
		},
		Features: []string{
			"Light enough to forget about, tough enough to rely on.",
			"Repairable, with spare parts sold separately.",
			"Reflective details keep you visible at dusk.",
			"Packs down small.",
		},
		Children: []category{
			{Slug: "camping-hiking", Name: "Camping & Hiking", Options: optColour, Price: [2]int64{1990, 39900},
				Adjectives: []string{"Ultralight", "Waterproof", "Insulated", "Packable"},
				Nouns:      []string{"Tent", "Sleeping Bag", "Hiking Backpack", "Trekking Poles", "Camp Stove", "Headlamp"}},
			{Slug: "cycling", Name: "Cycling", Options: optColour, Price: [2]int64{1490, 14900},
				Adjectives: []string{"Aero", "Reflective", "Lightweight", "Commuter"},
				Nouns:      []string{"Bike Helmet", "Bike Light Set", "Saddle Bag", "Bottle Cage", "Cycling Gloves"}},
			{Slug: "fitness", Name: "Fitness", Options: optColour, Price: [2]int64{1490, 12900},
				Adjectives: []string{"Non-Slip", "Adjustable", "Cork", "Recycled Rubber"},
				Nouns:      []string{"Yoga Mat", "Kettlebell", "Resistance Band Set", "Dumbbell Pair", "Foam Roller"}},
			{Slug: "running", Name: "Running", Options: optApparel, Price: [2]int64{1990, 9900},
				Adjectives: []string{"Breathable", "Lightweight", "Reflective", "Seamless"},
				Nouns:      []string{"Running Shorts", "Running Jacket", "Running Vest", "Running Tights", "Running Top"}},
			{Slug: "water-sports", Name: "Water Sports", Options: optColour, Price: [2]int64{1490, 24900},
				Adjectives: []string{"Neoprene", "Quick-Dry", "UV-Protective"},
				Nouns:      []string{"Wetsuit", "Swim Goggles", "Dry Bag", "Rash Guard", "Snorkel Set"}},
		},
	},
	{
		Slug: "beauty", Name: "Beauty", Shape: shapeDrop,
		Brands:        []string{"Lumière Botanics", "Solveig", "Verdant", "Aurelle", "Kinfolk Skincare", "Mira Naturals"},
		StoreSuffixes: []string{"Apothecary", "Beauty", "Botanicals", "Skin Studio"},
		Colours:       []string{"Blush Pink", "Cream", "Sage", "Lilac", "Coral", "White"},
		Attributes: []attribute{
			{"skin_type", []string{"All skin types", "Dry", "Oily", "Sensitive", "Combination"}},
			{"vegan", []string{"Yes", "No"}},
			{"origin", origins},
		},
		Openers: []string{
			"The {title} {is} a short list of ingredients that do what they say.",
			"{brand} formulated the {name} with dermatologists, not marketers.",
			"The {title} fit{s} a routine that takes two minutes.",
		},
		Features: []string{
			"Free from parabens and synthetic fragrance.",
			"Never tested on animals.",
			"In a recyclable glass bottle.",
			"Suitable for daily use, morning and night.",
		},
		Children: []category{
			{Slug: "skincare", Name: "Skincare", Options: optScale, ScaleKey: "volume", Scale: []string{"30 ml", "50 ml", "100 ml"}, Step: 1.5, Price: [2]int64{990, 5900},
				Adjectives: []string{"Hydrating", "Brightening", "Vitamin C", "Hyaluronic", "Gentle"},
				Nouns:      []string{"Face Serum", "Moisturiser", "Cleanser", "Eye Cream", "Face Mask", "Toner"}},
			{Slug: "haircare", Name: "Haircare", Options: optScale, ScaleKey: "volume", Scale: []string{"100 ml", "250 ml", "500 ml"}, Step: 1.6, Price: [2]int64{790, 3490},
				Adjectives: []string{"Nourishing", "Volumising", "Argan Oil", "Sulfate-Free"},
				Nouns:      []string{"Shampoo", "Conditioner", "Hair Mask", "Styling Cream", "Hair Oil"}},
			{Slug: "fragrance", Name: "Fragrance", Options: optScale, ScaleKey: "volume", Scale: []string{"30 ml", "50 ml", "100 ml"}, Step: 1.5, Price: [2]int64{1990, 12900},
				Adjectives: []string{"Cedar & Vetiver", "Fig Leaf", "Amber", "Neroli", "Sea Salt"},
				Nouns:      []string{"Eau de Parfum", "Eau de Toilette", "Room Spray", "Body Mist"}},
			{Slug: "bath-body", Name: "Bath & Body", Options: optScale, ScaleKey: "volume", Scale: []string{"100 ml", "250 ml", "500 ml"}, Step: 1.6, Price: [2]int64{590, 2990},
				Adjectives: []string{"Oat Milk", "Lavender", "Shea Butter", "Eucalyptus", "Coconut"},
				Nouns:      []string{"Body Wash", "Body Lotion", "Bath Soak", "Hand Cream"}},
		},
	},
	{
		Slug: "toys-games", Name: "Toys & Games", Shape: shapeStar,
		Brands:        []string{"Playwell", "Tinker & Twig", "Brickhaus", "Moonbeam Toys", "Kobold Games", "Little Otter"},
		StoreSuffixes: []string{"Toy Co.", "Playthings", "Toy Box", "Games"},
		Colours:       []string{"Red", "Yellow", "Sky Blue", "Orange", "Forest Green", "Lilac", "Natural"},
		Attributes: []attribute{
			{"age", []string{"3+", "5+", "6+", "8+", "10+", "12+", "14+"}},
			{"safety", []string{"EN 71 tested", "CE marked, EN 71 tested"}},
		},
		Openers: []string{
			"The {title} turn{s} a rainy afternoon into an adventure.",
			"{brand} designs with kids and parents in the room, and the {name} show{s} it.",
			"The {title} get{s} played with long after the box is recycled.",
		},
		Features: []string{
			"Non-toxic, water-based paints and finishes.",
			"Built to survive being dropped, thrown and loved.",
			"No batteries required.",
			"Comes in a gift-ready box.",
		},
		Children: []category{
			{Slug: "board-games", Name: "Board Games", Attributes: []attribute{{"players", []string{"1–4", "2–4", "2–6", "3–8"}}, {"playing_time", []string{"20 minutes", "45 minutes", "60–90 minutes"}}}, Options: optNone, Price: [2]int64{1490, 5990},
				Adjectives: []string{"Family", "Deluxe", "Travel", "Classic", "Cooperative"},
				Nouns:      []string{"Island Explorers Game", "Space Traders Card Game", "Castle Builders Board Game", "Dragon Dice Game", "Word Hunt Party Game", "Railway Tycoon Board Game"}},
			{Slug: "building-sets", Name: "Building Sets", AdjKey: "material", Options: optNone, Price: [2]int64{1990, 12900},
				Adjectives: []string{"Wooden", "Magnetic", "Recycled Plastic"},
				Nouns:      []string{"Castle Building Set", "Marble Run", "Train Set", "Construction Kit", "Treehouse Set"}},
			{Slug: "plush-toys", Name: "Plush Toys", Options: optScale, ScaleKey: "size", Scale: []string{"Small", "Medium", "Large"}, Step: 1.4, Price: [2]int64{990, 4990},
				Adjectives: []string{"Organic Cotton", "Super-Soft", "Knitted"},
				Nouns:      []string{"Teddy Bear", "Bunny", "Dinosaur", "Sloth", "Whale", "Fox"}},
			{Slug: "puzzles", Name: "Puzzles", Attributes: []attribute{{"finished_size", []string{"50 × 70 cm", "48 × 68 cm", "30 × 40 cm"}}}, Options: optNone, Price: [2]int64{990, 3990},
				Adjectives: []string{"500-Piece", "1000-Piece", "Wooden", "Floor"},
				Nouns:      []string{"Landscape Puzzle", "World Map Puzzle", "Jigsaw Puzzle", "3D Puzzle"}},
			{Slug: "outdoor-play", Name: "Outdoor Play", Options: optColour, Price: [2]int64{1490, 14900},
				Adjectives: []string{"Wooden", "Foldable", "Weatherproof"},
				Nouns:      []string{"Balance Bike", "Kite", "Sandpit Toy Set", "Garden Swing", "Scooter"}},
		},
	},
}

// Store names are a place-like word and a department's suffix.
var storePrefixes = []string{
	"Nordlys", "Harbour & Pine", "Juniper", "Copperfield", "Alder", "Bramble", "Saltmarsh", "Kestrel", "Linden",
	"Marlowe", "Oakhurst", "Willow Lane", "Tidewater", "Ember", "Fernhill", "Larkspur", "Greystone", "Bluebell",
	"Northgate", "Riverside", "Thistle", "Wren", "Hollow Oak", "Lantern", "Bellwether", "Cobble", "Driftwood",
}

var firstNames = []string{
	"Ana", "Liam", "Sofia", "Mateo", "Freya", "Noah", "Amara", "Elias", "Ingrid", "Tomás", "Yara", "Jonas",
	"Leila", "Oskar", "Maya", "Luca", "Hana", "Felix", "Zoë", "Ravi", "Clara", "Emil", "Nadia", "Hugo",
	"Aoife", "Mikkel", "Chiara", "Kofi", "Elin", "Jakub", "Marta", "Idris", "Saoirse", "Anton", "Lucía", "Ben",
}

var lastNames = []string{
	"Silva", "Novak", "Lindqvist", "Okafor", "Rossi", "Moreau", "Kowalski", "Jensen", "García", "Murphy",
	"Schmidt", "Haddad", "Virtanen", "Costa", "Andersen", "Kaplan", "Nakamura", "Dubois", "Fischer", "Byrne",
	"Petrov", "Martens", "Ahmed", "Brennan", "Horvath", "Ivanova", "Berg", "O'Connor", "Weber", "Santos",
}

// cities are for buyers' addresses: city, postal code, country.
var cities = [][3]string{
	{"Lisbon", "1100-148", "PT"}, {"Berlin", "10115", "DE"}, {"Amsterdam", "1012 AB", "NL"}, {"Dublin", "D02 X285", "IE"},
	{"Copenhagen", "1050", "DK"}, {"Milan", "20121", "IT"}, {"Lyon", "69002", "FR"}, {"Tallinn", "10111", "EE"},
	{"Valencia", "46001", "ES"}, {"Vienna", "1010", "AT"}, {"Helsinki", "00100", "FI"}, {"Ghent", "9000", "BE"},
}

var streets = []string{
	"Rua das Flores", "Linden Street", "Harbour Road", "Canal Walk", "Market Square", "Kastanienallee",
	"Mill Lane", "Via Roma", "Rue Centrale", "Station Road", "Parkweg", "Baker's Row",
}
