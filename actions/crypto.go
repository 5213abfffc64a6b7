package actions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// signature is Feishu's X-Lark-Signature: hex(SHA-256(timestamp + nonce +
// encryptKey + body)), over the raw body as it came.
func signature(timestamp, nonce, encryptKey string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write([]byte(nonce))
	h.Write([]byte(encryptKey))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// equal compares two secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// decrypt opens an "encrypt" field: base64 of IV (16 bytes) and
// AES-256-CBC ciphertext, keyed by SHA-256 of the Encrypt Key, PKCS#7
// padded. The padding is checked in full, so a wrong key or a damaged
// blob fails here rather than yielding garbage to the JSON decoder.
func decrypt(blob string, key [32]byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(blob)
	if err != nil {
		return nil, errors.New("decrypt callback: encrypt is not base64")
	}
	if len(raw) < 2*aes.BlockSize || len(raw)%aes.BlockSize != 0 {
		return nil, errors.New("decrypt callback: encrypt is not whole AES blocks")
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	iv, data := raw[:aes.BlockSize], raw[aes.BlockSize:]
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	n := int(out[len(out)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, errors.New("decrypt callback: bad padding")
	}
	var bad byte
	for _, c := range out[len(out)-n:] {
		bad |= c ^ byte(n)
	}
	if bad != 0 {
		return nil, errors.New("decrypt callback: bad padding")
	}
	return out[:len(out)-n], nil
}

// sha256Key derives the AES key from the Encrypt Key.
func sha256Key(k string) [32]byte { return sha256.Sum256([]byte(k)) }
