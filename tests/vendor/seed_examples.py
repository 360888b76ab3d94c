"""Every request example of the three seed vendors (../shared/seeds/000-002), as each vendor documents it, for
the compat routes' tests. Only the seeds' placeholders are filled: the customer (the seeds' "igsid",
"{{CONTACT_ID}}", "Recipients IGSID") and, where a seed names the Instagram account id, the account. Webex
Connect's `from` is left as its seed has it (an app id): the key's or the stack's only account sends."""

from typing import Any

WEBEX_COMMON = {
    "from": "a_637921640978680000",
    "callbackData": "customerID123|1234|new_sale",
    "correlationId": "de36bb32-3f5d-46c9-b132-15e010a80ccc",
    "notificationType": "REGULAR",
    "messagingType": "RESPONSE",
}


def webex_connect(customer: str, callback_url: str) -> dict[str, dict[str, Any]]:
    common = {**WEBEX_COMMON, "to": customer, "callbackUrl": callback_url}
    return {
        "text": {
            **common,
            "content": "A while back I needed to count the amount of letters that a piece of text in an email "
            "template had (to avoid passing any character limits). Unfortunately",
            "contentType": "TEXT",
        },
        "template": {
            **common,
            "content": "hello",
            "contentType": "TEMPLATE",
            "template": [
                {
                    "title": "Welcome!",
                    "subtitle": "We have the right hat for everyone.",
                    "imageUrl": "https://sample-videos.com/img/Sample-jpg-image-2mb.jpg",
                    "defaultAction": {"type": "WEB_URL", "url": "https://www.originalcoastclothing.com"},
                    "buttons": [
                        {"type": "web_url", "url": "www.google.com", "title": "View Website"},
                        {"type": "postback", "title": "Start Chatting", "payload": "DEVELOPER_DEFINED_PAYLOAD"},
                        {"type": "postback", "title": "Start Chatting", "payload": "DEVELOPER_DEFINED_PAYLOAD"},
                    ],
                }
            ],
        },
        "media": {
            **common,
            "url": "https://www.learningcontainer.com/wp-content/uploads/2020/08/Sample-Image-file-Download.png",
            "contentType": "MEDIA",
        },
        "sticker": {**common, "type": "like_heart", "contentType": "STICKER"},
        "quick_replies": {
            **common,
            "from": "app-id",
            "content": "Please confirm to proceed.",
            "contentType": "TEXT",
            "quickReplies": [
                {"type": "TEXT", "title": "Confirm", "payload": "confirm"},
                {"type": "TEXT", "title": "Cancel", "payload": "cancel"},
            ],
        },
    }


SINCH_LOGO = "https://1vxc0v12qhrm1e72gq1mmxkf-wpengine.netdna-ssl.com/wp-content/uploads/2019/05/Sinch-logo-Events.png"
SINCH_ANTHEM = "https://latam.sinch.com/wp-content/uploads/2021/03/Sinch-Anthem-v2.png"


def sinch(account: str, customer: str) -> dict[str, dict[str, Any]]:
    """The seed's snippets leave out recipient and app_id "for brevity"; each gets them here."""
    to = {"app_id": account, "recipient": {"contact_id": customer}}
    return {
        "reply_with_tag": {
            **to,
            "message": {"text_message": {"text": "Text message from Sinch Conversation API."}},
            "channel_properties": {"INSTAGRAM_MESSAGE_TAG": "HUMAN_AGENT"},
            "channel_priority_order": ["INSTAGRAM"],
        },
        "text": {**to, "message": {"text_message": {"text": "Greetings from Sinch Conversation API!"}}},
        "media": {**to, "message": {"media_message": {"url": SINCH_ANTHEM}}},
        "choice": {
            **to,
            "message": {
                "choice_message": {
                    "text_message": {"text": "Yes or No?"},
                    "choices": [
                        {"text_message": {"text": "Yes"}, "postback_data": "choice_y"},
                        {"text_message": {"text": "No"}, "postback_data": "choice_n"},
                    ],
                }
            },
        },
        "card": {
            **to,
            "message": {
                "card_message": {
                    "title": "This is the card title",
                    "description": "This is the card description",
                    "media_message": {"url": SINCH_LOGO},
                    "choices": [
                        {"text_message": {"text": "Suggested Reply"}},
                        {"call_message": {"title": "Call Someone", "phone_number": "+46732000000"}},
                        {"url_message": {"title": "Sinch", "url": "https://www.sinch.com"}},
                    ],
                }
            },
        },
        "carousel": {
            **to,
            "message": {
                "carousel_message": {
                    "cards": [
                        {
                            "title": "This is the card 1 title",
                            "description": "This is the card 1 description",
                            "media_message": {"url": SINCH_LOGO},
                            "choices": [
                                {"text_message": {"text": "Suggested Reply 1"}},
                                {"text_message": {"text": "Suggested Reply 2"}},
                                {"text_message": {"text": "Suggested Reply 3"}},
                            ],
                        },
                        {
                            "title": "This is the card 2 title",
                            "description": "This is the card 2 description",
                            "media_message": {"url": SINCH_ANTHEM},
                            "choices": [
                                {"url_message": {"title": "URL Choice", "url": "https://www.sinch.com"}},
                                {"call_message": {"title": "Call Choice", "phone_number": "46732000000"}},
                                {
                                    "location_message": {
                                        "title": "Location Choice",
                                        "label": "Enriching Engagement",
                                        "coordinates": {"latitude": 55.610479, "longitude": 13.002873},
                                    }
                                },
                            ],
                        },
                    ]
                }
            },
        },
        "location": {
            **to,
            "message": {
                "location_message": {
                    "title": "Location Message",
                    "coordinates": {"latitude": 55.610479, "longitude": 13.002873},
                }
            },
        },
    }


CM_TABLET = "https://www.cm.com/cdn/web/blog/featured/cm-tablet.jpg"


def _cm(account: str, customer: str, token: str, **msg: Any) -> dict[str, Any]:
    return {
        "messages": {
            "authentication": {"producttoken": token},
            "msg": [{"from": account, "to": [{"number": customer}], "allowedChannels": ["Instagram"], **msg}],
        }
    }


def cm(account: str, customer: str, token: str) -> dict[str, dict[str, Any]]:
    """`token` fills "Your product token": the gateway's API key, when the test sends it in the body."""
    return {
        "text": _cm(account, customer, token, body={"type": "auto", "content": "CM.com - Be part of it."}),
        "text_and_image": _cm(
            account,
            customer,
            token,
            body={"type": "auto", "content": "Fallback Text"},
            richContent={
                "conversation": [
                    {
                        "text": "CM.com - Be part of it.",
                        "media": {"mediaName": "cm-tablet.jpg", "mediaUri": CM_TABLET, "mimeType": "image/jpeg"},
                    }
                ]
            },
        ),
        "suggestions": _cm(
            account,
            customer,
            token,
            body={"content": ""},
            richContent={
                "conversation": [
                    {
                        "text": "Hi, what can I do for you?",
                        "suggestions": [
                            {"action": "Reply", "label": "Call me", "postbackdata": "CALL"},
                            {"action": "Reply", "label": "Email me", "postbackdata": "EMAIL"},
                            {"action": "Reply", "label": "Send me an sms", "postbackdata": "SMS"},
                        ],
                    }
                ]
            },
        ),
        "handover_suggestion": _cm(
            account,
            customer,
            token,
            body={"content": ""},
            richContent={
                "conversation": [
                    {
                        "text": "Hi, what can I do for you?",
                        "suggestions": [
                            {"action": "Reply", "label": "Ask a question", "postbackdata": "QUESTION"},
                            {"action": "Reply", "label": "Talk to live agent", "postbackdata": "HUMAN_AGENT"},
                        ],
                    }
                ]
            },
        ),
        "rich_card": _cm(
            account,
            customer,
            token,
            body={"content": ""},
            richContent={
                "conversation": [
                    {
                        "header": "We are CM.com!",
                        "text": "Visit our website or start a chat with one of our employee's!",
                        "media": {"mediaUri": CM_TABLET},
                        "suggestions": [
                            {"action": "OpenUrl", "label": "Visit our website!", "url": "https://cm.com"},
                            {"action": "Reply", "label": "I want to chat!", "postbackdata": "HUMAN_AGENT"},
                        ],
                    }
                ]
            },
        ),
        "carousel": _cm(
            account,
            customer,
            token,
            body={"content": ""},
            richContent={
                "conversation": [
                    {
                        "carousel": {
                            "cards": [
                                {
                                    "header": "We are CM.com!",
                                    "text": "Visit our website or start a chat with one of our employee's!",
                                    "media": {"mediaUri": CM_TABLET},
                                    "suggestions": [
                                        {"action": "OpenUrl", "label": "Visit our website!", "url": "https://cm.com"},
                                        {"action": "Reply", "label": "I want to chat!", "postbackdata": "HUMAN_AGENT"},
                                    ],
                                },
                                {"header": "Our logo!", "media": {"mediaUri": CM_TABLET}},
                                {
                                    "header": "Conversational Channels",
                                    "text": "Here's a selection of some of the channels we support!",
                                    "suggestions": [
                                        {
                                            "action": "OpenUrl",
                                            "label": "WhatsApp!",
                                            "url": "https://www.cm.com/whatsapp/",
                                        },
                                        {
                                            "action": "OpenUrl",
                                            "label": "Instagram Messaging!",
                                            "url": "https://www.cm.com/instagram-messaging",
                                        },
                                        {"action": "OpenUrl", "label": "RCS!", "url": "https://www.cm.com/rcs/"},
                                    ],
                                },
                            ]
                        }
                    }
                ]
            },
        ),
    }
