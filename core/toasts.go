package core

import (
	"encoding/json"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// toast is what a click's answer pops up, in both languages: Feishu shows
// the clicker's own.
type toast struct {
	Type string `json:"type"`
	En   string `json:"en"`
	Zh   string `json:"zh"`
}

// toast is t as Feishu takes it, its content in lang (en when "").
func (t toast) toast(lang string) *actions.Toast {
	content := t.En
	if lang == "zh" {
		content = t.Zh
	}
	return &actions.Toast{Type: t.Type, Content: content, I18n: map[string]string{"en_us": t.En, "zh_cn": t.Zh}}
}

// toastFrom reads a toast remembered with a callback.
func toastFrom(b json.RawMessage) toast {
	var t toast
	if json.Unmarshal(b, &t) != nil || t.Type == "" {
		return toastDone
	}
	return t
}

var (
	toastDone             = toast{actions.ToastSuccess, "Done.", "已完成。"}
	toastAcknowledged     = toast{actions.ToastSuccess, "Acknowledged: escalation stops, and the chat sees you have it.", "已确认：升级停止，群里都能看到由你处理。"}
	toastUnsilenced       = toast{actions.ToastSuccess, "Silence expired: the alerts notify again.", "静默已解除：告警会再次通知。"}
	toastNotSilenced      = toast{actions.ToastInfo, "There is no silence in force to expire.", "没有生效中的静默可解除。"}
	toastResolved         = toast{actions.ToastInfo, "This incident is resolved: there is nothing left to do.", "此事件已恢复，无需操作。"}
	toastUnknown          = toast{actions.ToastError, "This button is not one this service knows (an old or another app's card?): nothing was done.", "无法识别此按钮（旧卡片或其他应用的卡片？），未执行任何操作。"}
	toastNotAllowed       = toast{actions.ToastError, "You are not allowed to act on incidents here (actions.allowed): nothing was done.", "你无权处理此处的事件（actions.allowed），未执行任何操作。"}
	toastBusy             = toast{actions.ToastError, "The incident is busy or its state cannot be reached: nothing was done; try again in a moment.", "事件正忙或状态存储不可用，未执行任何操作，请稍后重试。"}
	toastAlertmanagerDown = toast{actions.ToastError, "Alertmanager did not answer: no silence was changed; try again.", "Alertmanager 无响应，静默未变更，请重试。"}
)

func toastSilenced(d string) toast {
	return toast{actions.ToastSuccess, "Silenced for " + d + " in Alertmanager: escalation stops.", "已在 Alertmanager 中静默 " + d + "，升级停止。"}
}

func toastAlertmanagerRefused(msg string) toast {
	return toast{actions.ToastError, "Alertmanager refused the silence: " + msg, "Alertmanager 拒绝了此静默：" + msg}
}

func toastAlreadyAcknowledged(a *incident.Ack, rc *Receiver) toast {
	at := a.At.In(location(rc)).Format("15:04 MST")
	return toast{actions.ToastInfo, "Already acknowledged by " + who(a.By) + " at " + at + ": nothing changed.", who(a.By) + " 已于 " + at + " 确认，未作更改。"}
}

func toastAlreadySilenced(s *incident.Silence, rc *Receiver) toast {
	until := s.Until.In(location(rc)).Format("2006-01-02 15:04 MST")
	return toast{actions.ToastInfo, "Already silenced until " + until + ": nothing changed.", "已静默至 " + until + "，未作更改。"}
}

// who names a person in a toast, which shows no mentions.
func who(p incident.Person) string {
	if p.Name != "" {
		return p.Name
	}
	return p.OpenID
}

func location(rc *Receiver) *time.Location {
	if rc.Config.Location != nil {
		return rc.Config.Location
	}
	return time.UTC
}
