package account

import "testing"

func TestParseUserAgent(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36":                           "Chrome on Linux",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0":                   "Edge on Windows",
		"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1":                                                            "Thunderbird on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0":                                                        "Firefox on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1":  "Chrome on iPhone",
		"iOS/17.1 (21B74) dataaccessd/1.0":                                "Apple Mail on iPhone",
		"Mail/3774.200.91.1.1 CFNetwork/1494.0.7 Darwin/23.4.0":           "Apple Mail on macOS",
		"DAVx5/4.3.6-ose (2023/09/03; dav4jvm; okhttp/4.11.0) Android/13": "DAVx⁵ on Android",
		"curl/8.5.0": "curl",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36":     "Chrome on Android",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15": "Safari on macOS",
		"something else": "",
		"":               "",
	} {
		if got := ParseUserAgent(ua).English(); got != want {
			t.Errorf("%.60q: %q, want %q", ua, got, want)
		}
	}
	if got := ParseUserAgent("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36").Format("%s（%s）"); got != "Chrome（Linux）" {
		t.Errorf("Japanese: %q", got)
	}
}
