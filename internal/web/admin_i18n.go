package web

// The strings of the console's frame and of its Domains section.
func init() {
	addCatalog(map[string]map[string]string{
		"en": {
			"admin.title":                "Admin console",
			"admin.nav.domains":          "Domains",
			"admin.forbidden.title":      "Not allowed",
			"admin.forbidden.org":        "Only an organisation administrator can do this.",
			"admin.domains.title":        "Domains",
			"admin.domains.intro":        "The domains you administer, their policy for third-party apps and their members' default mail storage.",
			"admin.domains.name":         "Domain",
			"admin.domains.created":      "Created",
			"admin.domains.policy":       "Third-party apps",
			"admin.domains.quota":        "Default mail storage",
			"admin.domains.quota.server": "Server default",
			"admin.domains.none":         "There are no domains yet.",
			"admin.policy.enforced":      "App passwords required",
			"admin.policy.optional":      "Each member decides",
		},
		"ja": {
			"admin.title":                "管理者画面",
			"admin.nav.domains":          "ドメイン",
			"admin.forbidden.title":      "権限がありません",
			"admin.forbidden.org":        "この操作は組織の管理者のみが行えます。",
			"admin.domains.title":        "ドメイン",
			"admin.domains.intro":        "管理しているドメインと、サードパーティアプリの利用ポリシー、メンバーのメール保存容量の既定値です。",
			"admin.domains.name":         "ドメイン",
			"admin.domains.created":      "作成日",
			"admin.domains.policy":       "サードパーティアプリ",
			"admin.domains.quota":        "メール保存容量の既定値",
			"admin.domains.quota.server": "サーバーの既定値",
			"admin.domains.none":         "ドメインはまだありません。",
			"admin.policy.enforced":      "アプリパスワードが必須",
			"admin.policy.optional":      "メンバーごとに設定",
		},
	})
}
