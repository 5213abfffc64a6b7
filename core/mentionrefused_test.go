package core

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
)

// Only a refusal for the mentions is worth a send without them: any other
// 230099 would meet the plain message too.
func TestMentionRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&feishu.Error{Code: 230099, Msg: "Failed to create card content, ext=ErrCode: 100290; ErrMsg: invalid user resource"}, true},
		{&feishu.Error{Code: 230099, Msg: "Failed to create card content, ext=@all is not enabled in this chat by its owner"}, true},
		{&feishu.Error{Code: 11235, Msg: "at all not allowed"}, true},
		{&feishu.Error{Code: 230099, Msg: "Service Internal Error"}, false},
		{&feishu.Error{Code: 230099, Msg: "Failed to create card content, ext=ErrCode: 200621; ErrMsg: parse card json err"}, false},
		{&feishu.Error{Endpoint: "im/v1/messages", Err: errors.New("connection reset")}, false},
		{errors.New("deadline"), false},
	} {
		require.Equal(t, c.want, mentionRefused(c.err), "%v", c.err)
	}
}
