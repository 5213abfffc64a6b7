package feishutest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientServesInMemory(t *testing.T) {
	s := New(t)
	hc := s.Client()
	s.Close() // no socket is needed
	resp, err := hc.Post("http://feishu.invalid"+tokenPath, "application/json",
		jsonBody(t, map[string]string{"app_id": AppID, "app_secret": AppSecret}))
	require.NoError(t, err)
	defer resp.Body.Close()
	var r reply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Zero(t, r.Code)
	require.NotEmpty(t, r.Token)

	s.FailNext(1, Fault{Drop: true})
	req, err := http.NewRequest(http.MethodPost, "http://feishu.invalid"+createPath, jsonBody(t, imBody("oc_1", "text", map[string]string{"text": "x"}, "")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+r.Token)
	_, err = hc.Do(req)
	require.ErrorContains(t, err, "connection closed", "a dropped connection fails the call")
}

func jsonBody(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return bytes.NewReader(b)
}
