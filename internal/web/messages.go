package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// messageView is a notification as a page or the API shows it: subject and
// body in the reader's language.
type messageView struct {
	ID        int64
	Kind      string
	Lang      string // the language of Subject and Body
	Subject   string
	Body      string
	CreatedAt time.Time
	Read      bool
	Params    map[string]string
	Links     []messageLink // what the message asks the reader to do, on this site
}

// messageLink is an action under a message. Href is one of a few fixed
// paths of this site, never a URL taken from the stored message: the links in
// the stored text point at the configured base URL, which is right in the
// INBOX mail but may not be the address this browser uses.
type messageLink struct{ Label, Href string }

func messageLinks(l, kind string) []messageLink {
	apps := messageLink{tr(l, "messages.link.apps"), "/security/app-passwords"}
	password := messageLink{tr(l, "messages.link.password"), "/security/password"}
	security := messageLink{tr(l, "messages.link.security"), "/security"}
	switch kind {
	case account.MsgAppPasswordCreated:
		return []messageLink{apps, password}
	case account.MsgAppPasswordDeleted, account.MsgSettingChanged:
		return []messageLink{password}
	case account.MsgAccountPaused:
		return []messageLink{security, password}
	case account.MsgSendLimited:
		return []messageLink{apps, password}
	case account.MsgAppPasswordExpiring, account.MsgAppPasswordExpired:
		return []messageLink{apps}
	}
	return nil
}

// localizeMessage renders m in language l from its kind and parameters,
// with times in loc. English, a kind this file does not know, and a message
// stored without parameters (older rows) keep the stored English subject and
// body, which account.Service wrote and which went into the INBOX mail.
//
// Parameters are plain text (the app name and the user agent come from
// clients): they are only ever formatted as arguments, never as a format,
// and the templates and the JSON encoder escape them where they are shown.
func localizeMessage(l string, loc *time.Location, m account.Message) messageView {
	v := messageView{ID: m.ID, Kind: m.Kind, Lang: "en", Subject: m.Subject, Body: m.Body,
		CreatedAt: m.CreatedAt, Read: m.Read, Params: m.Params, Links: messageLinks(l, m.Kind)}
	if l != "ja" || m.Params == nil {
		return v
	}
	p := m.Params
	when := func(key string) string {
		t, err := time.Parse(time.RFC3339, p[key])
		if err != nil {
			return p[key]
		}
		return formatTime(l, loc, t)
	}
	var subject, body string
	switch m.Kind {
	case account.MsgAppPasswordCreated:
		subject = "サードパーティアプリ用パスワードが作成されました: " + p["app"]
		body = fmt.Sprintf("アカウント %s のサードパーティアプリ用パスワードが作成されました。\n\nアプリ名: %s\n日時: %s\n%s\n"+
			"ご自身で作成したものでない場合は、すぐにこのパスワードを削除し、アカウントのパスワードを変更してください。\n"+
			"  サードパーティアプリ用パスワードを削除: %s\n  パスワードを変更: %s\n",
			p["email"], p["app"], when("time"), actorJA(p), p["link_apps"], p["link_password"])
	case account.MsgAppPasswordDeleted:
		subject = "サードパーティアプリ用パスワードが削除されました: " + p["app"]
		body = fmt.Sprintf("アカウント %s から、サードパーティアプリ用パスワード「%s」が削除されました。\n"+
			"このパスワードでログインしていたアプリはログアウトされ、このパスワードでは再びログインできません。\n\n日時: %s\n%s\n"+
			"ご自身で削除したものでない場合は、すぐにアカウントのパスワードを変更してください: %s\n",
			p["email"], p["app"], when("time"), actorJA(p), p["link_password"])
	case account.MsgSettingChanged:
		state, effect := "オフ", "サードパーティアプリはアカウントのパスワードでログインします。サードパーティアプリ用パスワードは使用できません。"
		if p["state"] == "on" {
			state, effect = "オン", "サードパーティアプリは、サードパーティアプリ用パスワードでのみログインできます。"
		}
		subject = "「サードパーティアプリ用パスワードを使用」が" + state + "になりました"
		body = fmt.Sprintf("アカウント %s の「サードパーティアプリ用パスワードを使用」が%sになりました。\n%s\n"+
			"ログインしていたサードパーティアプリはログアウトされたため、もう一度ログインする必要があります。\n\n日時: %s\n%s\n"+
			"ご自身で変更したものでない場合は、すぐにアカウントのパスワードを変更してください: %s\n",
			p["email"], state, effect, when("time"), actorJA(p), p["link_password"])
	case account.MsgPasswordChanged:
		extra := ""
		if p["deleted_apps"] == "1" {
			extra = "サードパーティアプリ用パスワードもすべて削除されました。\n"
		}
		subject = "パスワードが変更されました"
		body = fmt.Sprintf("アカウント %s のパスワードが変更されました。\n%sほかのセッションはサインアウトされました。\n\n日時: %s\n%s\n"+
			"ご自身で変更したものでない場合は、すぐに管理者に連絡してください。\n",
			p["email"], extra, when("time"), actorJA(p))
	case account.MsgAccountPaused:
		subject = "パスワードが推測されようとしている可能性があります"
		body = fmt.Sprintf("アカウント %s へのサードパーティアプリのログインの失敗が多すぎます（最後は %s から）。"+
			"%s まで、サードパーティアプリからメインパスワードではログインできません。"+
			"サードパーティアプリ用パスワードは引き続き使用でき、Web へのサインインもできます。\n\n"+
			"ご自身のアプリでない場合、誰かがパスワードを推測しようとしている可能性があります。"+
			"アカウントのパスワードを変更し、サードパーティアプリ用パスワードを確認してください: %s\n",
			p["email"], p["last_ip"], when("until"), p["link_security"])
	case account.MsgSendLimited:
		subject, body = sendLimitedJA(p, when("time"))
	case account.MsgAddressChanged:
		mail := "古いアドレス宛てのメールは今後届きません。"
		if p["kept_alias"] == "1" {
			mail = "古いアドレスはアカウントのエイリアスになり、宛てられたメールは引き続き届きます。"
		}
		subject = "アカウントのアドレスが " + p["email"] + " になりました"
		body = fmt.Sprintf("管理者がアカウントのアドレスを %s から %s に変更しました。\n"+
			"メール、カレンダー、連絡先、サードパーティアプリ用パスワードはそのままです。\n%s\n\n"+
			"新しいアドレスでサインインしてください。すべてのアプリとブラウザはサインアウトされました。"+
			"各アプリのユーザー名を %s から %s に変更し、サードパーティアプリ用パスワードはそのまま使ってください。\n\n日時: %s\n%s",
			p["old_email"], p["email"], mail, p["old_email"], p["email"], when("time"), actorJA(p))
	case account.MsgAppPasswordExpiring:
		subject = "サードパーティアプリ用パスワードがまもなく削除されます: " + p["app"]
		body = fmt.Sprintf("アカウント %s のサードパーティアプリ用パスワード「%s」はしばらく使われていません。"+
			"このドメインでは %s 日間使われていないサードパーティアプリ用パスワードは削除されます。このパスワードは %s に削除されます。\n\n"+
			"一度使う（アプリがこのパスワードでログインする）と削除されません。不要であれば何もする必要はありません。"+
			"サードパーティアプリ用パスワードの一覧: %s\n", p["email"], p["app"], p["days"], when("at"), p["link_apps"])
	case account.MsgAppPasswordExpired:
		subject = "使われていないサードパーティアプリ用パスワードが削除されました: " + p["app"]
		body = fmt.Sprintf("アカウント %s のサードパーティアプリ用パスワード「%s」は、ドメインで定められた %s 日間使われなかったため削除されました。\n\n"+
			"まだ必要なアプリには、新しいサードパーティアプリ用パスワードを作成してください: %s\n", p["email"], p["app"], p["days"], p["link_apps"])
	default:
		return v
	}
	v.Lang, v.Subject, v.Body = "ja", subject, body
	return v
}

// actorJA describes who made a change, one line each, as the English body does.
func actorJA(p map[string]string) string {
	var b strings.Builder
	if p["ip"] != "" {
		b.WriteString("IPアドレス: " + p["ip"] + "\n")
	}
	if ua := p["ua"]; ua != "" {
		name := describeBrowser("ja", ua)
		if name == tr("ja", "sessions.unknown") {
			if r := []rune(ua); len(r) > 80 {
				ua = string(r[:80]) + "…"
			}
			name = ua
		}
		b.WriteString("ブラウザ: " + name + "\n")
	}
	switch p["via"] {
	case "cli":
		b.WriteString("管理者が postern コマンドで行いました。\n")
	case "api":
		b.WriteString("API から行われました。\n")
	}
	return b.String()
}

// localizeMessages renders every message of list in l.
func localizeMessages(l string, loc *time.Location, list []account.Message) []messageView {
	out := make([]messageView, 0, len(list))
	for _, m := range list {
		out = append(out, localizeMessage(l, loc, m))
	}
	return out
}

// sendLimitedJA renders account.MsgSendLimited in Japanese from its
// parameters: the third-party app password (none for the main password), the cap
// (scope, what, window, max) and the links.
func sendLimitedJA(p map[string]string, when string) (subject, body string) {
	per := "アカウント全体（すべてのアプリの合計）で"
	if p["scope"] == "app_password" {
		per = "1つのサードパーティアプリ用パスワードにつき"
	}
	window, next := "1時間", "直近1時間の送信数が上限を下回ると、再び送信できます。"
	if p["window"] == "day" {
		window, next = "1日", "直近24時間の送信数が上限を下回るまで、送信できません。"
	}
	limit := fmt.Sprintf("%s%sに %s 通まで", per, window, p["max"])
	if p["what"] == "recipients" {
		limit = fmt.Sprintf("%s宛先を%sに %s 件まで", per, window, p["max"])
	}
	if p["app"] == "" {
		subject = "アカウントが送信の上限に達しました"
		body = fmt.Sprintf("アカウント %s から、アカウントのパスワードでログインしたアプリが送信したメールが、送信の上限（%s）に達しました。\n%s\n\n日時: %s\n\n"+
			"ご自身が送信したものでない場合、他人にパスワードを知られ、迷惑メールの送信に使われている可能性があります。すぐにパスワードを変更してください: %s\n",
			p["email"], limit, next, when, p["link_password"])
		return subject, body
	}
	subject = "サードパーティアプリ用パスワードが送信の上限に達しました: " + p["app"]
	body = fmt.Sprintf("アカウント %s から、サードパーティアプリ用パスワード「%s」で送信したメールが、送信の上限（%s）に達しました。\n%s\n\n日時: %s\n\n"+
		"ご自身が送信したものでない場合、他人にこのサードパーティアプリ用パスワードを知られ、迷惑メールの送信に使われている可能性があります。"+
		"すぐにこのパスワードを削除し、アカウントのパスワードを変更してください。\n  サードパーティアプリ用パスワードを削除: %s\n  パスワードを変更: %s\n",
		p["email"], p["app"], limit, next, when, p["link_apps"], p["link_password"])
	return subject, body
}
