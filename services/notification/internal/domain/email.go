package domain

import (
	"bytes"
	"fmt"
	"html"
	"strings"
	"text/template"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/tokyo"
)

// Email is a message to queue: a plain-text body and the same content as
// HTML, sent together as multipart/alternative.
type Email struct {
	ID string
	// BookingID, QuoteID or EndpointID names what the email is about.
	BookingID  string
	QuoteID    string
	EndpointID string
	Template   string
	Language   string
	To         string
	Subject    string
	Body       string
	HTML       string
}

// Templates patients receive.
const (
	TemplateQuoteIssued      = "quote_issued"
	TemplateBookingConfirmed = "booking_confirmed"
	TemplateBalanceFailed    = "balance_failed"
	TemplateBalanceCharged   = "balance_charged"
	TemplateQCFailed         = "qc_failed"
	TemplateAdministered     = "administered"
)

// Templates lists every email, in the order a booking meets them.
var Templates = []string{TemplateQuoteIssued, TemplateBookingConfirmed, TemplateBalanceCharged, TemplateBalanceFailed,
	TemplateQCFailed, TemplateAdministered}

// Languages patients are written to in; English is the fallback.
var Languages = []string{"en", "ko", "ja", "zh"}

// FollowUpMonths are the check-ups after administration the clinics plan,
// in months: at one, three and six.
var FollowUpMonths = []int{1, 3, 6}

// letter is one template in one language: a subject and paragraphs. A
// paragraph whose lines all start with "- " is a list. Both the text and
// the HTML part are rendered from the same paragraphs, and the HTML part
// escapes everything, so nothing a patient or clinic typed becomes markup.
type letter struct {
	subject    string
	paragraphs []string
}

// letters[template][language].
var letters = map[string]map[string]letter{
	TemplateQuoteIssued: {
		"en": {`Your quote for {{.TreatmentName}} at {{.ClinicName}}`, []string{
			`Dear {{.PatientName}},`,
			`Here is your quote for {{.TreatmentName}} at {{.ClinicName}}: {{money .Total}} in total, tax included.`,
			`It is paid in two stages:
- a deposit of {{money .Deposit}} when you book, for harvesting and culturing your cells;
- the balance of {{money .Balance}} once your cells have passed quality testing, before they are given.`,
			`The quote is valid until {{date .ValidUntil}} (Japan time). To book, sign in and accept it.`,
			`Quote reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`{{.ClinicName}} {{.TreatmentName}} 견적서`, []string{
			`{{.PatientName}} 님께,`,
			`{{.ClinicName}}의 {{.TreatmentName}} 견적을 보내드립니다. 총액은 세금 포함 {{money .Total}}입니다.`,
			`결제는 두 단계로 나뉩니다:
- 예약 시 세포 채취와 배양을 위한 예약금 {{money .Deposit}}
- 세포가 품질 검사를 통과한 뒤 투여 전에 잔금 {{money .Balance}}`,
			`이 견적은 {{date .ValidUntil}}(일본 시간)까지 유효합니다. 예약하시려면 로그인하여 견적을 수락해 주세요.`,
			`견적 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`{{.ClinicName}} {{.TreatmentName}}のお見積もり`, []string{
			`{{.PatientName}} 様`,
			`{{.ClinicName}}の{{.TreatmentName}}のお見積もりをお送りします。総額は税込{{money .Total}}です。`,
			`お支払いは2回に分かれます:
- ご予約時に、細胞の採取と培養のためのご予約金{{money .Deposit}}
- 細胞が品質検査に合格した後、投与の前に残金{{money .Balance}}`,
			`このお見積もりの有効期限は{{date .ValidUntil}}（日本時間）です。ご予約はログインしてお見積もりをご承認ください。`,
			`見積番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`{{.ClinicName}} {{.TreatmentName}}的报价`, []string{
			`尊敬的{{.PatientName}}：`,
			`这是您在{{.ClinicName}}接受{{.TreatmentName}}的报价：含税总额{{money .Total}}。`,
			`费用分两次支付：
- 预约时支付订金{{money .Deposit}}，用于采集和培养您的细胞；
- 细胞通过质量检测后、给药前支付尾款{{money .Balance}}。`,
			`本报价有效期至{{date .ValidUntil}}（日本时间）。如需预约，请登录并接受报价。`,
			`报价编号：{{.ID}}`,
			`Saisei Care`}},
	},
	TemplateBalanceFailed: {
		"en": {`{{if .Reminder}}Reminder: {{end}}We could not charge the balance of {{money .Balance}}`, []string{
			`Dear {{.PatientName}},`,
			`Your cells for {{.TreatmentName}} passed quality testing, but the balance of {{money .Balance}} could not be charged to the card you used for the deposit. {{if .Reminder}}It is still waiting for you.{{else if .RequiresAction}}Your bank asks you to confirm this payment yourself.{{else}}Your bank declined the payment.{{end}} Nothing has been charged.`,
			`What happens next:
- Your cells stay reserved for you.
- {{if .RequiresAction}}Confirm the payment with your bank{{else}}Pay the balance, with this or another card,{{end}}{{if .PayURL}} here: {{.PayURL}}{{end}}{{if not .PayBy.IsZero}} by {{date .PayBy}} (Japan time). If it is not paid by then, the booking is cancelled under its cancellation policy.{{else}}.{{end}}
- {{.ClinicName}} schedules the administration once the balance is received.`,
			`Booking reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`{{if .Reminder}}[다시 알림] {{end}}잔금 {{money .Balance}}을 결제하지 못했습니다`, []string{
			`{{.PatientName}} 님께,`,
			`{{.TreatmentName}}을 위한 세포는 품질 검사를 통과했지만, 예약금을 결제하신 카드로 잔금 {{money .Balance}}을 결제하지 못했습니다. {{if .Reminder}}잔금 결제가 아직 완료되지 않았습니다.{{else if .RequiresAction}}카드사에서 고객님의 직접 승인을 요청했습니다.{{else}}카드사에서 결제를 거절했습니다.{{end}} 결제된 금액은 없습니다.`,
			`앞으로의 진행:
- 세포는 고객님을 위해 계속 보관됩니다.
- {{if .RequiresAction}}카드사에서 결제를 직접 승인해 주세요{{else}}이 카드 또는 다른 카드로 잔금을 결제해 주세요{{end}}{{if .PayURL}}: {{.PayURL}}{{end}}{{if not .PayBy.IsZero}} (기한: {{date .PayBy}}, 일본 시간). 기한까지 결제되지 않으면 예약은 취소 규정에 따라 취소됩니다.{{else}}.{{end}}
- 잔금이 결제되면 {{.ClinicName}}에서 투여 일정을 잡습니다.`,
			`예약 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`{{if .Reminder}}【再送】{{end}}残金{{money .Balance}}を決済できませんでした`, []string{
			`{{.PatientName}} 様`,
			`{{.TreatmentName}}の細胞は品質検査に合格しましたが、ご予約金をお支払いいただいたカードで残金{{money .Balance}}を決済できませんでした。{{if .Reminder}}残金のお支払いがまだ完了していません。{{else if .RequiresAction}}カード会社がご本人による承認を求めています。{{else}}カード会社が決済を承認しませんでした。{{end}}ご請求は発生していません。`,
			`今後の流れ:
- 細胞は引き続きお客様のために保管いたします。
- {{if .RequiresAction}}カード会社でお支払いをご承認ください{{else}}このカードまたは別のカードで残金をお支払いください{{end}}{{if .PayURL}}: {{.PayURL}}{{end}}{{if not .PayBy.IsZero}}（期限: {{date .PayBy}}、日本時間）。期限までにお支払いがない場合、ご予約はキャンセル規定に従って取り消されます。{{else}}。{{end}}
- 残金を受領しましたら、{{.ClinicName}}が投与の日程を調整いたします。`,
			`予約番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`{{if .Reminder}}【提醒】{{end}}尾款{{money .Balance}}扣款未成功`, []string{
			`尊敬的{{.PatientName}}：`,
			`您用于{{.TreatmentName}}的细胞已通过质量检测，但从您支付订金的银行卡扣除尾款{{money .Balance}}未成功。{{if .Reminder}}尾款仍待支付。{{else if .RequiresAction}}您的银行要求您本人确认这笔付款。{{else}}您的银行拒绝了这笔付款。{{end}}未产生任何扣款。`,
			`接下来：
- 您的细胞将继续为您保留。
- {{if .RequiresAction}}请向您的银行确认这笔付款{{else}}请使用此卡或其他银行卡支付尾款{{end}}{{if .PayURL}}：{{.PayURL}}{{end}}{{if not .PayBy.IsZero}}（截止：{{date .PayBy}}，日本时间）。如届时仍未支付，预约将按取消规定取消。{{else}}。{{end}}
- 收到尾款后，{{.ClinicName}}将安排给药时间。`,
			`预约编号：{{.ID}}`,
			`Saisei Care`}},
	},
	TemplateBookingConfirmed: {
		"en": {`Your booking at {{.ClinicName}} is confirmed`, []string{
			`Dear {{.PatientName}},`,
			`We have received your deposit of {{money .Deposit}} for {{.TreatmentName}} at {{.ClinicName}}. Your booking is confirmed and the clinic has been told.`,
			`What happens next:
- The clinic will contact you to schedule the harvest visit.
- Your cells are then cultured, which usually takes three to five weeks, and tested before release. You will receive the certificate of analysis (cell count and viability).
- Once the cells pass testing, the balance of {{money .Balance}} is charged to the card you paid the deposit with, and the clinic schedules the administration.`,
			`Total for the treatment: {{money .Total}}.`,
			`Booking reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`{{.ClinicName}} 예약이 확정되었습니다`, []string{
			`{{.PatientName}} 님께,`,
			`{{.ClinicName}}의 {{.TreatmentName}} 예약금 {{money .Deposit}}을 받았습니다. 예약이 확정되었으며 클리닉에도 알렸습니다.`,
			`앞으로의 진행:
- 클리닉에서 채취 방문 일정을 잡기 위해 연락드립니다.
- 이후 세포를 배양하며(보통 3~5주), 출하 전에 검사합니다. 세포 수와 생존율이 담긴 시험 성적서를 받으시게 됩니다.
- 세포가 검사를 통과하면 예약금을 결제하신 카드로 잔금 {{money .Balance}}이 결제되고, 클리닉에서 투여 일정을 잡습니다.`,
			`치료 총액: {{money .Total}}`,
			`예약 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`{{.ClinicName}}のご予約が確定しました`, []string{
			`{{.PatientName}} 様`,
			`{{.ClinicName}}の{{.TreatmentName}}のご予約金{{money .Deposit}}を受領いたしました。ご予約は確定し、クリニックにもお知らせしました。`,
			`今後の流れ:
- 採取のご来院日程について、クリニックからご連絡いたします。
- その後、細胞を培養し（通常3〜5週間）、出荷前に検査します。細胞数と生存率を記載した試験成績書をお送りします。
- 細胞が検査に合格しましたら、ご予約金をお支払いいただいたカードで残金{{money .Balance}}を決済し、クリニックが投与の日程を調整いたします。`,
			`治療の総額: {{money .Total}}`,
			`予約番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`您在{{.ClinicName}}的预约已确认`, []string{
			`尊敬的{{.PatientName}}：`,
			`我们已收到您在{{.ClinicName}}预约{{.TreatmentName}}的订金{{money .Deposit}}。您的预约已确认，诊所也已收到通知。`,
			`接下来：
- 诊所会与您联系，安排采集细胞的就诊时间。
- 之后将培养您的细胞（通常需要三到五周），并在放行前进行检测。您将收到检测报告（细胞数量和存活率）。
- 细胞通过检测后，将从您支付订金的银行卡扣除尾款{{money .Balance}}，诊所随后安排给药。`,
			`治疗总费用：{{money .Total}}`,
			`预约编号：{{.ID}}`,
			`Saisei Care`}},
	},
	TemplateBalanceCharged: {
		"en": {`Balance of {{money .Balance}} charged: your cells are ready`, []string{
			`Dear {{.PatientName}},`,
			`Your cells for {{.TreatmentName}} passed quality testing, and we have charged the balance of {{money .Balance}} to the card you used for the deposit. With the deposit of {{money .Deposit}}, the treatment ({{money .Total}}) is now paid in full.`,
			`{{.ClinicName}} will contact you to schedule the administration.`,
			`Booking reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`잔금 {{money .Balance}} 결제 완료: 세포가 준비되었습니다`, []string{
			`{{.PatientName}} 님께,`,
			`{{.TreatmentName}}을 위한 세포가 품질 검사를 통과하여, 예약금을 결제하신 카드로 잔금 {{money .Balance}}을 결제했습니다. 예약금 {{money .Deposit}}과 함께 치료비({{money .Total}}) 전액이 결제되었습니다.`,
			`{{.ClinicName}}에서 투여 일정을 잡기 위해 연락드립니다.`,
			`예약 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`残金{{money .Balance}}を決済しました：細胞の準備が整いました`, []string{
			`{{.PatientName}} 様`,
			`{{.TreatmentName}}の細胞が品質検査に合格しましたので、ご予約金をお支払いいただいたカードで残金{{money .Balance}}を決済いたしました。ご予約金{{money .Deposit}}と合わせ、治療費（{{money .Total}}）のお支払いはすべて完了です。`,
			`投与の日程について、{{.ClinicName}}からご連絡いたします。`,
			`予約番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`尾款{{money .Balance}}已扣款：您的细胞已准备就绪`, []string{
			`尊敬的{{.PatientName}}：`,
			`您用于{{.TreatmentName}}的细胞已通过质量检测，我们已从您支付订金的银行卡扣除尾款{{money .Balance}}。加上订金{{money .Deposit}}，治疗费用（{{money .Total}}）已全部付清。`,
			`{{.ClinicName}}会与您联系，安排给药时间。`,
			`预约编号：{{.ID}}`,
			`Saisei Care`}},
	},
	TemplateQCFailed: {
		"en": {`Your cells did not pass quality testing: nothing more will be charged`, []string{
			`Dear {{.PatientName}},`,
			`We are sorry: the cells cultured for {{.TreatmentName}} at {{.ClinicName}} did not pass the quality testing required before they may be given. They will not be administered.`,
			`The balance of {{money .Balance}} will not be charged. {{.ClinicName}} will contact you about what can be done next.`,
			`Booking reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`세포가 품질 검사를 통과하지 못했습니다: 추가 결제는 없습니다`, []string{
			`{{.PatientName}} 님께,`,
			`죄송합니다. {{.ClinicName}}에서 {{.TreatmentName}}을 위해 배양한 세포가 투여 전 필요한 품질 검사를 통과하지 못했습니다. 이 세포는 투여되지 않습니다.`,
			`잔금 {{money .Balance}}은 결제되지 않습니다. 이후 가능한 방법에 대해 {{.ClinicName}}에서 연락드립니다.`,
			`예약 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`細胞が品質検査に合格しませんでした：これ以上のご請求はありません`, []string{
			`{{.PatientName}} 様`,
			`誠に申し訳ございません。{{.ClinicName}}で{{.TreatmentName}}のために培養した細胞が、投与前に必要な品質検査に合格しませんでした。この細胞は投与されません。`,
			`残金{{money .Balance}}は請求いたしません。今後について、{{.ClinicName}}からご連絡いたします。`,
			`予約番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`您的细胞未通过质量检测：不会再收取任何费用`, []string{
			`尊敬的{{.PatientName}}：`,
			`很抱歉：{{.ClinicName}}为{{.TreatmentName}}培养的细胞未通过给药前必需的质量检测，将不会给药。`,
			`尾款{{money .Balance}}不会扣除。{{.ClinicName}}会就后续安排与您联系。`,
			`预约编号：{{.ID}}`,
			`Saisei Care`}},
	},
	TemplateAdministered: {
		"en": {`Your treatment at {{.ClinicName}} is complete: your follow-up visits`, []string{
			`Dear {{.PatientName}},`,
			`{{.ClinicName}} gave you {{.TreatmentName}} on {{date .AdministeredAt}}. Thank you for your trust.`,
			`Follow-up check-ups, to see how you respond:
{{range .FollowUps}}- {{date .}}
{{end}}`,
			`The clinic will confirm each appointment with you; a video consultation from home is usually possible.`,
			`Booking reference: {{.ID}}`,
			`Saisei Care`}},
		"ko": {`{{.ClinicName}} 치료가 완료되었습니다: 추적 관찰 일정`, []string{
			`{{.PatientName}} 님께,`,
			`{{date .AdministeredAt}}에 {{.ClinicName}}에서 {{.TreatmentName}} 투여를 받으셨습니다. 믿고 맡겨 주셔서 감사합니다.`,
			`치료 반응을 확인하기 위한 추적 관찰 일정:
{{range .FollowUps}}- {{date .}}
{{end}}`,
			`클리닉에서 각 일정을 확인해 드리며, 대부분 자택에서 화상 진료도 가능합니다.`,
			`예약 번호: {{.ID}}`,
			`Saisei Care 드림`}},
		"ja": {`{{.ClinicName}}での治療が完了しました：経過観察の予定`, []string{
			`{{.PatientName}} 様`,
			`{{date .AdministeredAt}}に{{.ClinicName}}で{{.TreatmentName}}の投与を受けられました。ご信頼いただきありがとうございます。`,
			`治療の反応を確認する経過観察の予定:
{{range .FollowUps}}- {{date .}}
{{end}}`,
			`各回の日時はクリニックからご確認の連絡をいたします。多くの場合、ご自宅からのオンライン診療も可能です。`,
			`予約番号: {{.ID}}`,
			`Saisei Care`}},
		"zh": {`您在{{.ClinicName}}的治疗已完成：随访安排`, []string{
			`尊敬的{{.PatientName}}：`,
			`您已于{{date .AdministeredAt}}在{{.ClinicName}}接受了{{.TreatmentName}}。感谢您的信任。`,
			`为观察治疗效果，随访安排如下：
{{range .FollowUps}}- {{date .}}
{{end}}`,
			`诊所会与您确认每次随访的时间，通常也可以在家进行视频问诊。`,
			`预约编号：{{.ID}}`,
			`Saisei Care`}},
	},
}

// formatMoney writes an amount the way the language writes yen, the same
// way in every email: ¥1,540,000 / 1,540,000엔 / 1,540,000円 / 1,540,000日元.
func formatMoney(lang string, m money.Money) string {
	if m.Currency != money.JPY {
		return m.Format()
	}
	digits := strings.TrimPrefix(m.Format(), "¥")
	switch lang {
	case "ko":
		return digits + "엔"
	case "ja":
		return digits + "円"
	case "zh":
		return digits + "日元"
	}
	return m.Format()
}

var months = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

// formatDate writes the clinic's calendar date (Tokyo) of t.
func formatDate(lang string, t time.Time) string {
	d := t.In(tokyo.Location)
	switch lang {
	case "ko":
		return fmt.Sprintf("%d년 %d월 %d일", d.Year(), d.Month(), d.Day())
	case "ja", "zh":
		return fmt.Sprintf("%d年%d月%d日", d.Year(), d.Month(), d.Day())
	}
	return fmt.Sprintf("%d %s %d", d.Day(), months[d.Month()-1], d.Year())
}

// emailData is what a letter is rendered from.
type emailData struct {
	Booking
	FollowUps []time.Time
}

// ComposeEmail renders template name for b in b's language, falling back
// to English: a subject, a text body and an HTML body from the same words.
func ComposeEmail(name string, b Booking) (Email, error) {
	byLang, ok := letters[name]
	if !ok {
		return Email{}, fmt.Errorf("no email template %q", name)
	}
	lang := b.Language
	l, ok := byLang[lang]
	if !ok {
		lang, l = "en", byLang["en"]
	}
	funcs := template.FuncMap{
		"money": func(m money.Money) string { return formatMoney(lang, m) },
		"date":  func(t time.Time) string { return formatDate(lang, t) },
	}
	data := emailData{Booking: b}
	if !b.AdministeredAt.IsZero() {
		for _, m := range FollowUpMonths {
			data.FollowUps = append(data.FollowUps, addMonths(b.AdministeredAt.In(tokyo.Location), m))
		}
	}
	render := func(src string) (string, error) {
		t, err := template.New(name).Funcs(funcs).Parse(src)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.TrimSpace(buf.String()), nil
	}
	subject, err := render(l.subject)
	if err != nil {
		return Email{}, err
	}
	var text, markup []string
	for _, p := range l.paragraphs {
		rendered, err := render(p)
		if err != nil {
			return Email{}, err
		}
		text = append(text, rendered)
		markup = append(markup, htmlParagraph(rendered))
	}
	return Email{ID: b.ID + ":" + name, Template: name, Language: lang, To: b.PatientEmail, Subject: subject,
		Body: strings.Join(text, "\n\n"),
		HTML: `<!DOCTYPE html><html lang="` + lang + `"><head><meta charset="utf-8"><title>` + html.EscapeString(subject) +
			`</title></head><body>` + strings.Join(markup, "\n") + `</body></html>`}, nil
}

// htmlParagraph renders one rendered paragraph as HTML, escaping all of it:
// lines after a heading that start with "- " become a list.
func htmlParagraph(p string) string {
	lines := strings.Split(p, "\n")
	var out strings.Builder
	var items []string
	flush := func() {
		if len(items) > 0 {
			out.WriteString("<ul>")
			for _, it := range items {
				out.WriteString("<li>" + html.EscapeString(it) + "</li>")
			}
			out.WriteString("</ul>")
			items = nil
		}
	}
	var prose []string
	for _, line := range lines {
		if item, ok := strings.CutPrefix(line, "- "); ok {
			items = append(items, item)
			continue
		}
		prose = append(prose, html.EscapeString(line))
	}
	if len(prose) > 0 {
		out.WriteString("<p>" + strings.Join(prose, "<br>") + "</p>")
	}
	flush()
	return out.String()
}

// addMonths is the same day n months later, or the last day of that month
// when it is shorter: a month after 31 January is 28 February, not 3 March.
func addMonths(t time.Time, n int) time.Time {
	first := time.Date(t.Year(), t.Month()+time.Month(n), 1, t.Hour(), t.Minute(), 0, 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(t.Day(), last)-1)
}
