package feishu_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
)

func TestLostRootCodes(t *testing.T) {
	for _, code := range []int{230011, 230110, 231003, 230050, 230019, 230111} {
		for _, ep := range []string{"im/v1/messages/reply", "im/v1/messages", "message/v4/send"} {
			err := &feishu.Error{Endpoint: ep, HTTPStatus: 400, Code: code, Msg: "gone"}
			require.Equal(t, feishu.RootGone, feishu.Classify(err), "%d on %s", code, ep)
			require.False(t, feishu.ConfigurationError(err), "%d on %s", code, ep)
		}
		// A buzz starts no chain again.
		err := &feishu.Error{Endpoint: feishu.EndpointUrgentApp, HTTPStatus: 400, Code: code}
		require.Equal(t, feishu.Permanent, feishu.Classify(err), "%d on urgent", code)
	}
}

func TestConfigurationError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&feishu.Error{Code: 230002, Msg: "Bot/User can NOT be out of the chat."}, true},
		{&feishu.Error{Code: 10002}, true},
		{&feishu.Error{Code: 10030, Msg: "bot not in chat"}, true},
		{&feishu.Error{Code: 99991672, Msg: "Access denied."}, true},
		{&feishu.Error{Code: 230006}, true},
		{&feishu.Error{Code: 230001, Msg: "param is invalid, ext=invalid receive_id"}, true},
		{&feishu.Error{Code: 230020}, true},
		{&feishu.Error{HTTPStatus: 429}, true},
		{&feishu.Error{Code: 99991663}, true},
		{fmt.Errorf("send: %w", &feishu.TokenError{Err: &feishu.Error{Code: 10014}}), true},
		{&feishu.Error{Code: 230001, Msg: "param is invalid, ext=invalid message_id"}, false},
		{&feishu.Error{Code: 230011}, false},
		{&feishu.Error{Code: 99999, Msg: "unknown"}, false},
		{&feishu.Error{Code: 230025}, false},
		{errors.New("deadline"), false},
		{nil, false},
	} {
		require.Equal(t, tc.want, feishu.ConfigurationError(tc.err), "%v", tc.err)
	}
}
