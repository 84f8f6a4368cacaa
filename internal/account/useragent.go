package account

import "strings"

// UserAgent is what a User-Agent header says about the program and the
// system it runs on; either may be "" when the header does not tell.
type UserAgent struct {
	App    string // "Chrome", "Thunderbird", "Apple Mail", "DAVx⁵", "curl"
	System string // "Linux", "Windows", "macOS", "iPhone", "Android"
}

// uaRule maps a token of the header to a name; the first rule that matches
// wins, so the more specific tokens come first.
type uaRule struct{ token, name string }

// Mail, calendar and contacts apps first: Thunderbird's header also says
// Firefox and Gecko, Outlook's says Windows. Then browsers: Edge and Opera
// also say Chrome, Chrome also says Safari, and an iPhone's Chrome is CriOS.
var uaApps = []uaRule{
	{"Thunderbird/", "Thunderbird"}, {"Microsoft Outlook", "Outlook"}, {"Outlook-iOS", "Outlook"},
	{"Outlook-Android", "Outlook"}, {"Microsoft Office", "Outlook"}, {"Evolution/", "Evolution"},
	{"DAVx5/", "DAVx⁵"}, {"DAVdroid/", "DAVx⁵"}, {"vdirsyncer/", "vdirsyncer"},
	{"dataaccessd/", "Apple Mail"}, {"Mail/", "Apple Mail"}, {"CalendarStore/", "Apple Calendar"},
	{"AddressBook/", "Apple Contacts"}, {"CalendarAgent/", "Apple Calendar"},
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"FxiOS/", "Firefox"}, {"Firefox/", "Firefox"}, {"CriOS/", "Chrome"}, {"HeadlessChrome/", "Chrome"},
	{"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"},
	{"curl/", "curl"}, {"python", "Python"}, {"Go-http-client", "Go"}, {"okhttp/", "okhttp"},
}

var uaSystems = []uaRule{
	{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"iOS/", "iPhone"}, {"Android", "Android"}, {"Windows", "Windows"},
	{"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"macOS", "macOS"}, {"Darwin/", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
}

func uaPick(ua string, rules []uaRule) string {
	for _, r := range rules {
		if strings.Contains(ua, r.token) {
			return r.name
		}
	}
	return ""
}

// ParseUserAgent names the client behind a User-Agent header for people —
// "Chrome", "Linux"; "Thunderbird"; "Apple Mail", "iPhone" — so that the
// notices to the member and the web UI's pages, in every language, describe
// a client the same way.
func ParseUserAgent(ua string) UserAgent {
	c := UserAgent{App: uaPick(ua, uaApps), System: uaPick(ua, uaSystems)}
	if c.App == "Apple Mail" && c.System == "" && strings.Contains(ua, "CFNetwork/") {
		c.System = "macOS"
	}
	if c.App == "Safari" && (c.System == "Android" || c.System == "Linux") {
		// Android's WebView and other WebKit browsers say Safari too.
		c.App = ""
	}
	return c
}

// Known reports whether anything was recognised.
func (c UserAgent) Known() bool { return c.App != "" || c.System != "" }

// English is the client for people in English: "Chrome on Linux",
// "Thunderbird", "Apple Mail on iPhone"; "" when nothing was recognised.
func (c UserAgent) English() string { return c.Format("%s on %s") }

// Format names the client with onFormat ("%s on %s", "%s（%s）") when both
// the app and the system are known, else with the one that is.
func (c UserAgent) Format(onFormat string) string {
	switch {
	case c.App == "":
		return c.System
	case c.System == "":
		return c.App
	}
	return strings.Replace(strings.Replace(onFormat, "%s", c.App, 1), "%s", c.System, 1)
}
