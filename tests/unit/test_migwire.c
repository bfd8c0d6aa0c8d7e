/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The online migration frames (proto/migwire.h): each type round-trips;
 * hostile frames (every truncation, a byte flipped in every header field,
 * lengths past their bound or the body, trailing bytes, unknown types,
 * ops and flags, unprintable messages) are refused; the quotes'
 * qualifying data binds every input.  Also the key store's layout 3
 * (online migrations) and the export blob's volatile part.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/expblob.h"
#include "proto/keystore.h"
#include "proto/migwire.h"
#include "proto/resumetag.h"

static const uint8_t pub[40] = { 1, 2, 3 }, att[70] = { 4, 5 },
		     sig[72] = { 6 }, spki[91] = { 0x30, 0x59 };
static const uint8_t blob[300] = { 'V', 'T', 'P', 'M' };

static struct migwire_msg sample(uint8_t type)
{
	struct migwire_msg m = { .type = type };

	switch (type) {
	case MIGWIRE_HELLO:
		m.op = MIGWIRE_OP_COMMIT;
		m.flags = MIGWIRE_F_START;
		memset(m.uuid, 0x11, 16);
		memset(m.txid, 0x22, 16);
		m.generation = 77;
		memset(m.nonce, 0x33, sizeof(m.nonce));
		break;
	case MIGWIRE_CHALLENGE:
		memset(m.nonce, 0x44, sizeof(m.nonce));
		m.key_public = (struct migwire_bytes){ pub, sizeof(pub) };
		m.key_attest = (struct migwire_bytes){ att, sizeof(att) };
		m.key_sig = (struct migwire_bytes){ sig, sizeof(sig) };
		m.ak_spki = (struct migwire_bytes){ spki, sizeof(spki) };
		break;
	case MIGWIRE_REQUEST:
		m.ak_spki = (struct migwire_bytes){ spki, sizeof(spki) };
		m.attest = (struct migwire_bytes){ att, sizeof(att) };
		m.sig = (struct migwire_bytes){ sig, sizeof(sig) };
		m.payload = (struct migwire_bytes){ blob, sizeof(blob) };
		break;
	case MIGWIRE_REPLY:
		m.status = MIGWIRE_REFUSED;
		m.message = (struct migwire_bytes){ (const uint8_t *)"no", 2 };
		m.attest = (struct migwire_bytes){ att, sizeof(att) };
		m.sig = (struct migwire_bytes){ sig, sizeof(sig) };
		break;
	}
	return m;
}

static void bytes_eq(struct migwire_bytes a, struct migwire_bytes b)
{
	assert_int_equal(a.n, b.n);
	if (a.n)
		assert_memory_equal(a.p, b.p, a.n);
}

static void test_roundtrip(void **state)
{
	(void)state;
	for (uint8_t t = MIGWIRE_HELLO; t <= MIGWIRE_REPLY; t++) {
		struct migwire_msg m = sample(t), d;
		uint8_t *buf;
		size_t len, total;
		char err[200];

		assert_int_equal(migwire_encode(&m, &buf, &len), 0);
		assert_int_equal(migwire_frame_len(buf, len, &total), 0);
		assert_int_equal(total, len);
		assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
				 0);
		assert_int_equal(d.type, t);
		assert_int_equal(d.op, m.op);
		assert_int_equal(d.flags, m.flags);
		assert_memory_equal(d.uuid, m.uuid, 16);
		assert_memory_equal(d.txid, m.txid, 16);
		assert_int_equal(d.generation, m.generation);
		assert_memory_equal(d.nonce, m.nonce, sizeof(m.nonce));
		assert_int_equal(d.status, m.status);
		bytes_eq(d.key_public, m.key_public);
		bytes_eq(d.key_attest, m.key_attest);
		bytes_eq(d.key_sig, m.key_sig);
		bytes_eq(d.ak_spki, m.ak_spki);
		bytes_eq(d.attest, m.attest);
		bytes_eq(d.sig, m.sig);
		bytes_eq(d.payload, m.payload);
		bytes_eq(d.message, m.message);
		free(buf);
	}
}

/* Every prefix is incomplete or refused; so is every longer buffer. */
static void test_truncated_and_trailing(void **state)
{
	(void)state;
	for (uint8_t t = MIGWIRE_HELLO; t <= MIGWIRE_REPLY; t++) {
		struct migwire_msg m = sample(t), d;
		uint8_t *buf, *big;
		size_t len, total;
		char err[200];

		assert_int_equal(migwire_encode(&m, &buf, &len), 0);
		for (size_t n = 0; n < len; n++) {
			int rc = migwire_frame_len(buf, n, &total);

			assert_true(rc == -EAGAIN || (rc == 0 && total > n));
			assert_int_equal(migwire_decode(buf, n, &d, err,
							sizeof(err)),
					 -EBADMSG);
		}
		big = calloc(1, len + 1);
		memcpy(big, buf, len);
		assert_int_equal(migwire_decode(big, len + 1, &d, err,
						sizeof(err)), -EBADMSG);
		/* The body one byte longer, as the header says: trailing. */
		be32_put(big + 8, (uint32_t)(len + 1 - MIGWIRE_HDR_LEN));
		assert_int_equal(migwire_decode(big, len + 1, &d, err,
						sizeof(err)), -EBADMSG);
		free(big);
		free(buf);
	}
}

static void test_bad_header(void **state)
{
	struct migwire_msg m = sample(MIGWIRE_HELLO), d;
	uint8_t *buf;
	size_t len, total;
	char err[200];

	(void)state;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	/* magic, version, type, reserved */
	for (size_t off = 0; off < 8; off++) {
		buf[off] ^= 0x40;
		assert_int_equal(migwire_frame_len(buf, len, &total), -EBADMSG);
		assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
				 -EBADMSG);
		buf[off] ^= 0x40;
	}
	buf[5] = 0;
	assert_int_equal(migwire_frame_len(buf, len, &total), -EBADMSG);
	buf[5] = 5;
	assert_int_equal(migwire_frame_len(buf, len, &total), -EBADMSG);
	buf[5] = MIGWIRE_HELLO;
	/* a body length past the bound, before any allocation */
	be32_put(buf + 8, MIGWIRE_MAX_BODY + 1);
	assert_int_equal(migwire_frame_len(buf, len, &total), -EBADMSG);
	be32_put(buf + 8, 0xffffffffu);
	assert_int_equal(migwire_frame_len(buf, len, &total), -EBADMSG);
	free(buf);
}

static void test_hello_fields(void **state)
{
	struct migwire_msg m = sample(MIGWIRE_HELLO), d;
	uint8_t *buf;
	size_t len;
	char err[200];

	(void)state;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	/* op 0, op 4, an unknown flag, reserved bytes */
	buf[MIGWIRE_HDR_LEN] = 0;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	buf[MIGWIRE_HDR_LEN] = 4;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	buf[MIGWIRE_HDR_LEN] = MIGWIRE_OP_MIGRATE;
	buf[MIGWIRE_HDR_LEN + 1] = 0x02;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	buf[MIGWIRE_HDR_LEN + 1] = 0;
	buf[MIGWIRE_HDR_LEN + 3] = 1;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	buf[MIGWIRE_HDR_LEN + 3] = 0;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)), 0);
	free(buf);
	/* the encoder refuses what the decoder would */
	m.op = 9;
	assert_int_equal(migwire_encode(&m, &buf, &len), -EINVAL);
	m.op = MIGWIRE_OP_ABORT;
	m.flags = 0x80;
	assert_int_equal(migwire_encode(&m, &buf, &len), -EINVAL);
}

/* Each length field of a CHALLENGE set past its bound, to zero, and
 * past the body. */
static void test_var_lengths(void **state)
{
	struct migwire_msg m = sample(MIGWIRE_CHALLENGE), d;
	uint8_t *buf;
	size_t len, off;
	char err[200];
	const size_t sizes[] = { sizeof(pub), sizeof(att), sizeof(sig),
				 sizeof(spki) };
	const uint16_t bad[] = { 0, MIGWIRE_PUBLIC_MAX + 1, 0xffff };

	(void)state;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	off = MIGWIRE_HDR_LEN + MIGWIRE_NONCE_LEN;
	for (size_t i = 0; i < 4; i++) {
		uint16_t keep = be16_get(buf + off);

		for (size_t j = 0; j < 3; j++) {
			be16_put(buf + off, bad[j]);
			assert_int_equal(migwire_decode(buf, len, &d, err,
							sizeof(err)),
					 -EBADMSG);
		}
		be16_put(buf + off, keep + 1);
		assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
				 -EBADMSG);
		be16_put(buf + off, keep);
		off += 2 + sizes[i];
	}
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)), 0);
	free(buf);
}

static void test_request_payload(void **state)
{
	struct migwire_msg m = sample(MIGWIRE_REQUEST), d;
	uint8_t *buf;
	size_t len, off;
	char err[200];

	(void)state;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	off = MIGWIRE_HDR_LEN + 2 + sizeof(spki) + 2 + sizeof(att) + 2 +
	      sizeof(sig);
	assert_int_equal(be32_get(buf + off), sizeof(blob));
	be32_put(buf + off, EXPBLOB_MAX_LEN + 1);
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	be32_put(buf + off, 0xffffffffu);
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	be32_put(buf + off, sizeof(blob) - 1);
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	free(buf);
	/* an empty payload (COMMIT, ABORT) is a valid REQUEST; an empty
	 * signature is not */
	m.payload.n = 0;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)), 0);
	assert_int_equal(d.payload.n, 0);
	free(buf);
	m.sig.n = 0;
	assert_int_equal(migwire_encode(&m, &buf, &len), -EINVAL);
}

static void test_reply_message(void **state)
{
	struct migwire_msg m = sample(MIGWIRE_REPLY), d;
	uint8_t *buf;
	size_t len;
	char err[200];

	(void)state;
	assert_int_equal(migwire_encode(&m, &buf, &len), 0);
	/* "no" at 18..19: a control byte in it, a status of 3 */
	buf[MIGWIRE_HDR_LEN + 6] = '\n';
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	buf[MIGWIRE_HDR_LEN + 6] = 'n';
	buf[MIGWIRE_HDR_LEN] = 3;
	assert_int_equal(migwire_decode(buf, len, &d, err, sizeof(err)),
			 -EBADMSG);
	free(buf);
	m.message = (struct migwire_bytes){ (const uint8_t *)"a\x01", 2 };
	assert_int_equal(migwire_encode(&m, &buf, &len), -EINVAL);
}

/* The qualifying data changes with every input. */
static void test_qd_binds(void **state)
{
	uint8_t t1[32], t2[32], q[6][32];

	(void)state;
	migwire_transcript((const uint8_t *)"h1", 2, (const uint8_t *)"c1", 2,
			   t1);
	migwire_transcript((const uint8_t *)"h1", 2, (const uint8_t *)"c2", 2,
			   t2);
	assert_memory_not_equal(t1, t2, 32);
	migwire_request_qd(t1, spki, sizeof(spki), blob, sizeof(blob), q[0]);
	migwire_request_qd(t2, spki, sizeof(spki), blob, sizeof(blob), q[1]);
	migwire_request_qd(t1, spki, sizeof(spki) - 1, blob, sizeof(blob),
			   q[2]);
	migwire_request_qd(t1, spki, sizeof(spki), blob, sizeof(blob) - 1,
			   q[3]);
	migwire_reply_qd(t1, 0, (const uint8_t *)"ok", 2, q[4]);
	migwire_reply_qd(t1, 1, (const uint8_t *)"ok", 2, q[5]);
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			assert_memory_not_equal(q[i], q[j], 32);
}

/* ---- the key store's online migrations (layout 3) ---- */

static const uint8_t root[KEYSTORE_ROOT_KEY_LEN] = { 9 };

static void test_keystore_txs(void **state)
{
	struct keystore ks, back;
	struct keystore_meta meta;
	struct keystore_rec r = { .tpm_version = 2 };
	struct keystore_tx tx = { .state = KS_TX_OUT_COMMITTED,
				  .flags = KS_TX_F_START };
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	memset(r.uuid, 0x55, 16);
	r.flags = KS_REC_TOMBSTONE;
	assert_int_equal(keystore_add(&ks, &r), 0);
	memset(tx.uuid, 0x55, 16);
	memset(tx.txid, 0x66, 16);
	strcpy(tx.addr, "127.0.0.1:4000");
	assert_int_equal(keystore_tx_put(&ks, &tx), 0);
	tx.uuid[0] = 0x44;
	tx.state = KS_TX_IN_PENDING;
	tx.flags = 0;
	tx.addr[0] = '\0';
	assert_int_equal(keystore_tx_put(&ks, &tx), 0);
	assert_int_equal(ks.ntxs, 2);
	assert_int_equal(ks.txs[0].uuid[0], 0x44);  /* ascending */
	/* bad state, flags, address */
	tx.state = 9;
	assert_int_equal(keystore_tx_put(&ks, &tx), KS_ERR_INVALID);
	tx.state = KS_TX_IN_DONE;
	tx.flags = 2;
	assert_int_equal(keystore_tx_put(&ks, &tx), KS_ERR_INVALID);
	tx.flags = 0;
	strcpy(tx.addr, "a b");
	assert_int_equal(keystore_tx_put(&ks, &tx), KS_ERR_INVALID);

	assert_int_equal(keystore_encode(&ks, root, 3, 4, &buf, &len), 0);
	assert_int_equal(be16_get(buf + 10), KEYSTORE_LAYOUT_ONLINE);
	assert_int_equal(keystore_decode(buf, len, root, &back, &meta), 0);
	assert_int_equal(back.ntxs, 2);
	assert_memory_equal(back.txs, ks.txs, 2 * sizeof(*ks.txs));
	assert_int_equal(back.nimports, 0);
	keystore_free(&back);
	free(buf);
	/* without transactions: layout 1 again */
	assert_int_equal(keystore_tx_del(&ks, tx.uuid), 0);
	memset(tx.uuid, 0x55, 16);
	assert_int_equal(keystore_tx_del(&ks, tx.uuid), 0);
	assert_int_equal(keystore_tx_del(&ks, tx.uuid), KS_ERR_NOT_FOUND);
	assert_int_equal(keystore_encode(&ks, root, 3, 4, &buf, &len), 0);
	assert_int_equal(be16_get(buf + 10), KEYSTORE_LAYOUT_IDS);
	free(buf);
	keystore_free(&ks);
}

/* Hostile layout-3 bodies, authentic (sealed with the key). */
static void test_keystore_txs_hostile(void **state)
{
	/* groups: next 1, count 1, group 0; no records; no imports; one
	 * transaction */
	uint8_t body[12 + 4 + 4 + 4 + KEYSTORE_TX_LEN];
	struct keystore ks;
	struct keystore_meta meta;
	uint8_t *buf, *p;
	size_t len;

	(void)state;
	memset(body, 0, sizeof(body));
	be32_put(body, 1);
	be32_put(body + 4, 1);
	/* group 0 at 8; record count 0 at 12; import count 0 at 16 */
	be32_put(body + 20, 1);
	p = body + 24;
	p[0] = 0x77;
	p[32] = KS_TX_IN_DONE;
	assert_int_equal(keystore_seal_layout(root, 1, 1, KEYSTORE_LAYOUT_ONLINE,
					      body, sizeof(body), &buf, &len),
			 0);
	assert_int_equal(keystore_decode(buf, len, root, &ks, &meta), 0);
	assert_int_equal(ks.ntxs, 1);
	keystore_free(&ks);
	free(buf);
	{
		/* each: a bad state, a flag, a reserved byte, an address
		 * without its NUL, an unprintable address, a zero UUID, a
		 * count too high, a count of zero */
		const size_t offs[] = { 32, 33, 34, 68, 68, 0 };
		const uint8_t vals[] = { 0, 4, 1, 'x', 0x01, 0 };

		for (size_t i = 0; i < 6; i++) {
			uint8_t save[KEYSTORE_TX_LEN];

			memcpy(save, p, sizeof(save));
			if (i == 3)
				memset(p + 68, 'x', KEYSTORE_TX_ADDR_LEN);
			else
				p[offs[i]] = vals[i];
			assert_int_equal(keystore_seal_layout(
						 root, 1, 1,
						 KEYSTORE_LAYOUT_ONLINE, body,
						 sizeof(body), &buf, &len),
					 0);
			assert_int_equal(keystore_decode(buf, len, root, &ks,
							 &meta),
					 KS_ERR_FORMAT);
			free(buf);
			memcpy(p, save, sizeof(save));
		}
	}
	for (uint32_t count = 0; count < 3; count += 2) {
		be32_put(body + 20, count);
		assert_int_equal(keystore_seal_layout(root, 1, 1,
						      KEYSTORE_LAYOUT_ONLINE,
						      body, sizeof(body), &buf,
						      &len),
				 0);
		assert_int_equal(keystore_decode(buf, len, root, &ks, &meta),
				 KS_ERR_FORMAT);
		free(buf);
	}
}

/* ---- the export blob's volatile part ---- */

static void test_expblob_volatile(void **state)
{
	struct expblob_hdr h = { .generation = 5 };
	struct expblob_body b = { .family = 2, .flags = EXPBLOB_F_VOLATILE },
			    o;
	uint8_t key[EXPBLOB_KEY_LEN] = { 1 }, perm[100] = { 2 },
		vol[50] = { 3 }, *buf;
	size_t len;
	char err[200];

	(void)state;
	b.state = perm;
	b.state_len = sizeof(perm);
	b.vol = vol;
	b.vol_len = sizeof(vol);
	migtag_encode((const uint8_t *)"0123456789abcdef", b.tag);
	b.tag_len = MIGTAG_LEN;
	assert_int_equal(expblob_seal(&h, key, &b, &buf, &len), 0);
	assert_int_equal(expblob_open(buf, len, key, &o, err, sizeof(err)), 0);
	assert_int_equal(o.state_len, sizeof(perm));
	assert_int_equal(o.vol_len, sizeof(vol));
	assert_memory_equal(o.vol, vol, sizeof(vol));
	assert_int_equal(o.tag_len, MIGTAG_LEN);
	assert_memory_equal(o.tag, b.tag, MIGTAG_LEN);
	expblob_body_free(&o);
	free(buf);
	/* refused at sealing: the flag without a volatile state, a volatile
	 * state without the flag or without a permanent one, a long tag */
	b.vol_len = 0;
	assert_int_equal(expblob_seal(&h, key, &b, &buf, &len), -EINVAL);
	b.vol_len = sizeof(vol);
	b.flags = 0;
	assert_int_equal(expblob_seal(&h, key, &b, &buf, &len), -EINVAL);
	b.flags = EXPBLOB_F_VOLATILE;
	b.tag_len = EXPBLOB_MAX_TAG + 1;
	assert_int_equal(expblob_seal(&h, key, &b, &buf, &len), -EINVAL);
	b.tag_len = 0;
	b.flags = EXPBLOB_F_VOLATILE | EXPBLOB_F_NOSTATE;
	b.state_len = 0;
	assert_int_equal(expblob_seal(&h, key, &b, &buf, &len), -EINVAL);
}

static void test_migtag(void **state)
{
	uint8_t tag[MIGTAG_LEN], txid[16];
	struct resume_tag xt;

	(void)state;
	migtag_encode((const uint8_t *)"0123456789abcdef", tag);
	assert_int_equal(migtag_decode(tag, sizeof(tag), txid), 0);
	assert_memory_equal(txid, "0123456789abcdef", 16);
	assert_int_equal(resumetag_decode(tag, sizeof(tag), &xt), -EBADMSG);
	assert_int_equal(migtag_decode(tag, sizeof(tag) - 1, txid), -EBADMSG);
	for (size_t i = 0; i < 8; i++) {
		tag[i] ^= 0x10;
		assert_int_equal(migtag_decode(tag, sizeof(tag), txid),
				 -EBADMSG);
		tag[i] ^= 0x10;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_hello_fields),
		cmocka_unit_test(test_var_lengths),
		cmocka_unit_test(test_request_payload),
		cmocka_unit_test(test_reply_message),
		cmocka_unit_test(test_qd_binds),
		cmocka_unit_test(test_keystore_txs),
		cmocka_unit_test(test_keystore_txs_hostile),
		cmocka_unit_test(test_expblob_volatile),
		cmocka_unit_test(test_migtag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
